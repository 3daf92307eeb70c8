//! Settings given in code, turned into a tree so they merge field by field with files and the
//! environment.

use crate::settings::{ConnectionProxies, ProxyConfig, ProxySettings};
use crate::tree::{Entry, Origin, Table, Value};

pub(crate) fn code_tree(settings: &ProxySettings) -> Table {
    let mut root = Table::new();
    insert(&mut root, "enabled", Value::Bool(settings.enabled));
    insert(
        &mut root,
        "default",
        Value::Table(proxies_tree(&settings.default)),
    );
    let exchanges = settings
        .exchanges
        .iter()
        .map(|(id, proxies)| {
            (
                id.as_str().to_owned(),
                entry(Value::Table(proxies_tree(proxies))),
            )
        })
        .collect();
    insert(&mut root, "exchanges", Value::Table(exchanges));
    root
}

fn proxies_tree(proxies: &ConnectionProxies) -> Table {
    let mut table = Table::new();
    for (key, proxy) in [("http", &proxies.http), ("websocket", &proxies.websocket)] {
        if let Some(proxy) = proxy {
            insert(&mut table, key, Value::Table(proxy_tree(proxy)));
        }
    }
    table
}

fn proxy_tree(proxy: &ProxyConfig) -> Table {
    let mut table = Table::new();
    insert(&mut table, "url", Value::Url(proxy.url.clone()));
    insert(
        &mut table,
        "timeout_seconds",
        Value::Timeout(proxy.timeout_seconds),
    );
    table
}

fn entry(value: Value) -> Entry {
    Entry {
        value,
        origin: Origin::Code,
    }
}

fn insert(table: &mut Table, key: &str, value: Value) {
    table.insert(key.to_owned(), entry(value));
}
