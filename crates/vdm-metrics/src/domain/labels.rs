//! Bounded label values: each Prometheus label takes at most a fixed number
//! of distinct values, so a client cannot grow the series count at will.

use std::collections::HashSet;

/// The device classes kept as label values; any other is `other`.
pub const DEVICE_CLASSES: &[&str] = &["desktop", "laptop", "mobile", "tablet", "console", "vr", "web"];

/// The label value of a device class.
pub fn device_label(device_class: &str) -> &str {
    if DEVICE_CLASSES.contains(&device_class) {
        device_class
    } else {
        "other"
    }
}

/// Admits the first `cap` distinct values of a label; later new values are
/// folded into `other`.
#[derive(Debug)]
pub struct LabelCap {
    cap: usize,
    seen: HashSet<String>,
}

impl LabelCap {
    /// A cap of `cap` distinct values.
    pub fn new(cap: usize) -> LabelCap {
        LabelCap {
            cap,
            seen: HashSet::new(),
        }
    }

    /// The label value for `value`: itself if already seen or if there is
    /// room, else `other`.
    pub fn admit(&mut self, value: &str) -> String {
        if self.seen.contains(value) {
            return value.to_owned();
        }
        if self.seen.len() < self.cap {
            self.seen.insert(value.to_owned());
            return value.to_owned();
        }
        "other".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_beyond_the_cap() {
        let mut cap = LabelCap::new(2);
        assert_eq!(cap.admit("a"), "a");
        assert_eq!(cap.admit("b"), "b");
        assert_eq!(cap.admit("c"), "other");
        assert_eq!(cap.admit("a"), "a");
        assert_eq!(device_label("toaster"), "other");
        assert_eq!(device_label("mobile"), "mobile");
    }
}
