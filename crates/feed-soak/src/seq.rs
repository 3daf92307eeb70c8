//! Checking numbered messages: which of `0..expected` arrived, which arrived twice, which arrived
//! after a later one, and which carry a number that was never sent.

use serde::{Deserialize, Serialize};

/// What one stream (or the sum of many) delivered, against what was sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Counts {
    /// Messages sent, to be received.
    pub(crate) expected: u64,
    /// Messages received, every one counted (duplicates and strays too).
    pub(crate) received: u64,
    /// Numbers in `0..expected` never received.
    pub(crate) lost: u64,
    /// Messages whose number had already been received.
    pub(crate) duplicated: u64,
    /// Messages received after one with a higher number (counted once each, not as lost).
    pub(crate) reordered: u64,
    /// Messages that were not the stream's at all: a number outside `0..expected`, another
    /// connection's tag, or a payload that does not parse.
    pub(crate) stray: u64,
}

impl Counts {
    /// Whether everything sent arrived once, in order, and nothing else did.
    pub(crate) fn clean(&self) -> bool {
        self.lost == 0 && self.duplicated == 0 && self.reordered == 0 && self.stray == 0
    }

    #[cfg_attr(
        all(not(feature = "socks"), not(test)),
        expect(dead_code, reason = "only the SOCKS load scenarios (and tests) use it")
    )]
    pub(crate) fn add(&mut self, other: &Counts) {
        self.expected += other.expected;
        self.received += other.received;
        self.lost += other.lost;
        self.duplicated += other.duplicated;
        self.reordered += other.reordered;
        self.stray += other.stray;
    }

    /// `lost/dup/reordered`, with strays appended when there are any.
    pub(crate) fn ldr(&self) -> String {
        let mut text = format!("{}/{}/{}", self.lost, self.duplicated, self.reordered);
        if self.stray > 0 {
            text.push_str(&format!(" +{} stray", self.stray));
        }
        text
    }
}

/// The check of one stream numbered `0..expected`.
#[derive(Debug, Clone)]
pub(crate) struct SeqCheck {
    counts: Counts,
    /// One bit per number: received yet?
    seen: Vec<u64>,
    distinct: u64,
    /// One past the highest number received so far.
    high: u64,
}

impl SeqCheck {
    pub(crate) fn new(expected: u64) -> Self {
        Self {
            counts: Counts {
                expected,
                ..Counts::default()
            },
            seen: vec![0; expected.div_ceil(64) as usize],
            distinct: 0,
            high: 0,
        }
    }

    /// One message carrying `number`.
    pub(crate) fn push(&mut self, number: u64) {
        self.counts.received += 1;
        if number >= self.counts.expected {
            self.counts.stray += 1;
            return;
        }
        let (word, bit) = ((number / 64) as usize, 1u64 << (number % 64));
        if self.seen[word] & bit != 0 {
            self.counts.duplicated += 1;
            return;
        }
        self.seen[word] |= bit;
        self.distinct += 1;
        if number < self.high {
            self.counts.reordered += 1;
        }
        self.high = self.high.max(number + 1);
    }

    /// One message that is not this stream's.
    pub(crate) fn push_stray(&mut self) {
        self.counts.received += 1;
        self.counts.stray += 1;
    }

    /// The counts, with every number not received yet counted as lost.
    pub(crate) fn counts(&self) -> Counts {
        Counts {
            lost: self.counts.expected - self.distinct,
            ..self.counts
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_every_arrival() {
        // (expected, arrivals, (lost, duplicated, reordered, stray))
        type Case = (u64, &'static [u64], (u64, u64, u64, u64));
        let cases: &[Case] = &[
            (5, &[0, 1, 2, 3, 4], (0, 0, 0, 0)),
            (5, &[], (5, 0, 0, 0)),
            (5, &[0, 1, 3, 4], (1, 0, 0, 0)),
            (5, &[0, 1, 1, 2, 3, 4], (0, 1, 0, 0)),
            (5, &[0, 2, 1, 3, 4], (0, 0, 1, 0)),
            (5, &[4, 3, 2, 1, 0], (0, 0, 4, 0)),
            (5, &[0, 1, 2, 3, 4, 5], (0, 0, 0, 1)),
            (5, &[0, 2, 2, 1, 9], (2, 1, 1, 1)),
            (130, &[0, 64, 127, 128, 129, 64], (125, 1, 0, 0)),
        ];
        for (expected, arrivals, (lost, duplicated, reordered, stray)) in cases {
            let mut check = SeqCheck::new(*expected);
            for n in *arrivals {
                check.push(*n);
            }
            let counts = check.counts();
            assert_eq!(
                (
                    counts.lost,
                    counts.duplicated,
                    counts.reordered,
                    counts.stray
                ),
                (*lost, *duplicated, *reordered, *stray),
                "{arrivals:?} of {expected}"
            );
            assert_eq!(counts.received, arrivals.len() as u64);
            assert_eq!(
                counts.clean(),
                (*lost, *duplicated, *reordered, *stray) == (0, 0, 0, 0)
            );
        }
    }

    #[test]
    fn sums_and_prints() {
        let mut total = Counts::default();
        let mut a = SeqCheck::new(3);
        a.push(0);
        a.push_stray();
        let mut b = SeqCheck::new(2);
        b.push(1);
        b.push(0);
        total.add(&a.counts());
        total.add(&b.counts());
        assert_eq!(
            total,
            Counts {
                expected: 5,
                received: 4,
                lost: 2,
                duplicated: 0,
                reordered: 1,
                stray: 1,
            }
        );
        assert_eq!(total.ldr(), "2/0/1 +1 stray");
        assert_eq!(Counts::default().ldr(), "0/0/0");
    }
}
