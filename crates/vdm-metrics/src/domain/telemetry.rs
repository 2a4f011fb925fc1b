//! Client telemetry batches: what a Unity client uploads, and the checks that
//! turn it into a [`ClientBatch`].

use std::collections::BTreeMap;

/// Most samples one batch may carry.
pub const MAX_SAMPLES: usize = 500;
/// Most named systems one sample may carry.
pub const MAX_SYSTEMS: usize = 32;
/// Longest system name.
pub const MAX_SYSTEM_NAME: usize = 32;
/// Longest client version or device class.
pub const MAX_LABEL: usize = 32;
/// Largest accepted duration, in milliseconds (a frame of 10 s is a hang,
/// not a measurement worth a histogram bucket).
pub const MAX_MS: f64 = 10_000.0;
/// Largest accepted memory figure, in megabytes.
pub const MAX_MEMORY_MB: f64 = 1_048_576.0;
/// Most GC collections one frame may report.
pub const MAX_GC_COLLECTIONS: f64 = 1_000.0;
/// Most bytes one frame may report allocating on the managed heap (1 GiB:
/// beyond it the figure is a broken counter, not a frame).
pub const MAX_GC_ALLOC_BYTES: f64 = 1_073_741_824.0;

/// What a percentile query summarizes: one field of the stored samples, or
/// one system's update time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatsMetric {
    /// Frame time, in ms (the default).
    FrameTime,
    /// Bytes allocated on the managed heap in the frame.
    GcAllocBytes,
    /// GC collections in the frame.
    GcCollections,
    /// GC pause time, in ms.
    GcPause,
    /// Managed memory, in MB.
    Memory,
    /// Input-to-action latency, in ms.
    InputLatency,
    /// Event dispatch latency, in ms.
    EventDispatch,
    /// One named system's update time, in ms.
    SystemUpdate,
}

impl StatsMetric {
    /// Every metric, in the order the API documents them.
    pub const ALL: [StatsMetric; 8] = [
        StatsMetric::FrameTime,
        StatsMetric::GcAllocBytes,
        StatsMetric::GcCollections,
        StatsMetric::GcPause,
        StatsMetric::Memory,
        StatsMetric::InputLatency,
        StatsMetric::EventDispatch,
        StatsMetric::SystemUpdate,
    ];

    /// The metric's name in requests and answers: the sample field's name.
    pub fn name(self) -> &'static str {
        match self {
            StatsMetric::FrameTime => "frame_time_ms",
            StatsMetric::GcAllocBytes => "gc_alloc_bytes",
            StatsMetric::GcCollections => "gc_collections",
            StatsMetric::GcPause => "gc_pause_ms",
            StatsMetric::Memory => "memory_mb",
            StatsMetric::InputLatency => "input_latency_ms",
            StatsMetric::EventDispatch => "event_dispatch_ms",
            StatsMetric::SystemUpdate => "system_update_ms",
        }
    }

    /// The metric a query asks for: `metric` (empty: frame time, or the
    /// system's update time when `system` is set); the error says why not.
    pub fn parse(metric: &str, system: Option<&str>) -> Result<StatsMetric, String> {
        let parsed = match metric {
            "" if system.is_some() => StatsMetric::SystemUpdate,
            "" => StatsMetric::FrameTime,
            name => StatsMetric::ALL.into_iter().find(|m| m.name() == name).ok_or_else(|| {
                let names: Vec<&str> = StatsMetric::ALL.iter().map(|m| m.name()).collect();
                format!("metric {name:?} is not one of {}", names.join(", "))
            })?,
        };
        match (parsed, system) {
            (StatsMetric::SystemUpdate, None) => Err("metric system_update_ms needs a system".to_owned()),
            (StatsMetric::SystemUpdate, Some(_)) => Ok(parsed),
            (_, Some(_)) => Err(format!(
                "system is a filter of system_update_ms, not of {}",
                parsed.name()
            )),
            (_, None) => Ok(parsed),
        }
    }
}

/// A batch as received, before any check.
#[derive(Debug, Clone, Default)]
pub struct ClientBatchInput {
    /// The player who uploaded it.
    pub player_id: i64,
    /// The client build (`1.4.2`).
    pub client_version: String,
    /// The device class (`desktop`, `mobile`, ...).
    pub device_class: String,
    /// The samples.
    pub samples: Vec<ClientSampleInput>,
}

/// One sample as received.
#[derive(Debug, Clone, Default)]
pub struct ClientSampleInput {
    /// Frame time.
    pub frame_time_ms: f64,
    /// GC collections during the frame.
    pub gc_collections: Option<f64>,
    /// GC pause time.
    pub gc_pause_ms: Option<f64>,
    /// Managed memory.
    pub memory_mb: Option<f64>,
    /// Input-to-action latency.
    pub input_latency_ms: Option<f64>,
    /// Event dispatch latency.
    pub event_dispatch_ms: Option<f64>,
    /// Update time per named system.
    pub systems: Vec<(String, f64)>,
    /// Bytes allocated on the managed heap during the frame.
    pub gc_alloc_bytes: Option<f64>,
}

/// A checked batch: every number finite and in range, every name in its
/// charset and length.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientBatch {
    /// The player who uploaded it.
    pub player_id: i64,
    /// The client build.
    pub client_version: String,
    /// The device class.
    pub device_class: String,
    /// The samples, at least one.
    pub samples: Vec<ClientSample>,
}

/// A checked sample.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientSample {
    /// Frame time.
    pub frame_time_ms: f64,
    /// GC collections during the frame (a whole number).
    pub gc_collections: Option<i32>,
    /// GC pause time.
    pub gc_pause_ms: Option<f64>,
    /// Managed memory.
    pub memory_mb: Option<f64>,
    /// Input-to-action latency.
    pub input_latency_ms: Option<f64>,
    /// Event dispatch latency.
    pub event_dispatch_ms: Option<f64>,
    /// Update time per named system, by name.
    pub systems: BTreeMap<String, f64>,
    /// Bytes allocated on the managed heap during the frame (Unity's
    /// `GC Allocated In Frame`; a whole number).
    pub gc_alloc_bytes: Option<i64>,
}

impl ClientBatch {
    /// Checks a batch; the error names the first bad field
    /// (`samples[3].systems.animation must be ...`).
    pub fn parse(input: ClientBatchInput) -> Result<ClientBatch, String> {
        if input.player_id <= 0 {
            return Err("player_id must be positive".to_owned());
        }
        check_label("client_version", &input.client_version, |c| {
            c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '+')
        })?;
        check_label("device_class", &input.device_class, |c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'
        })?;
        if input.samples.is_empty() {
            return Err("samples must hold at least one sample".to_owned());
        }
        if input.samples.len() > MAX_SAMPLES {
            return Err(format!(
                "samples holds {} samples; at most {MAX_SAMPLES} per batch",
                input.samples.len()
            ));
        }
        let samples = input
            .samples
            .into_iter()
            .enumerate()
            .map(|(i, s)| parse_sample(i, s))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ClientBatch {
            player_id: input.player_id,
            client_version: input.client_version,
            device_class: input.device_class,
            samples,
        })
    }
}

fn check_label(field: &str, value: &str, allowed: impl Fn(char) -> bool) -> Result<(), String> {
    if value.is_empty() || value.len() > MAX_LABEL {
        return Err(format!("{field} must be 1 to {MAX_LABEL} characters"));
    }
    if !value.chars().all(allowed) {
        return Err(format!("{field} {value:?} has a character outside its charset"));
    }
    Ok(())
}

fn parse_sample(i: usize, s: ClientSampleInput) -> Result<ClientSample, String> {
    let field = |name: &str| format!("samples[{i}].{name}");
    let frame_time_ms = check_range(&field("frame_time_ms"), s.frame_time_ms, MAX_MS)?;
    let gc_collections = s
        .gc_collections
        .map(|v| check_whole(&field("gc_collections"), v, MAX_GC_COLLECTIONS))
        .transpose()?
        // In range 0..=1000 and whole, so the cast is exact.
        .map(|v| v as i32);
    let gc_alloc_bytes = s
        .gc_alloc_bytes
        .map(|v| check_whole(&field("gc_alloc_bytes"), v, MAX_GC_ALLOC_BYTES))
        .transpose()?
        // In range 0..=2^30 and whole, so the cast is exact.
        .map(|v| v as i64);
    let optional = |name: &str, v: Option<f64>, max: f64| v.map(|v| check_range(&field(name), v, max)).transpose();
    let gc_pause_ms = optional("gc_pause_ms", s.gc_pause_ms, MAX_MS)?;
    let memory_mb = optional("memory_mb", s.memory_mb, MAX_MEMORY_MB)?;
    let input_latency_ms = optional("input_latency_ms", s.input_latency_ms, MAX_MS)?;
    let event_dispatch_ms = optional("event_dispatch_ms", s.event_dispatch_ms, MAX_MS)?;
    if s.systems.len() > MAX_SYSTEMS {
        return Err(format!(
            "{} holds {} systems; at most {MAX_SYSTEMS}",
            field("systems"),
            s.systems.len()
        ));
    }
    let mut systems = BTreeMap::new();
    for (name, ms) in s.systems {
        if name.is_empty()
            || name.len() > MAX_SYSTEM_NAME
            || !name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            return Err(format!(
                "{} has a system name {name:?}; names are 1 to {MAX_SYSTEM_NAME} characters of [a-z0-9_]",
                field("systems")
            ));
        }
        let ms = check_range(&format!("{}.{name}", field("systems")), ms, MAX_MS)?;
        systems.insert(name, ms);
    }
    Ok(ClientSample {
        frame_time_ms,
        gc_collections,
        gc_pause_ms,
        memory_mb,
        input_latency_ms,
        event_dispatch_ms,
        systems,
        gc_alloc_bytes,
    })
}

fn check_whole(field: &str, value: f64, max: f64) -> Result<f64, String> {
    let value = check_range(field, value, max)?;
    if value.fract() != 0.0 {
        return Err(format!("{field} must be a whole number"));
    }
    Ok(value)
}

fn check_range(field: &str, value: f64, max: f64) -> Result<f64, String> {
    if !value.is_finite() || !(0.0..=max).contains(&value) {
        return Err(format!(
            "{field} must be a finite number between 0 and {max}, got {value}"
        ));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn good() -> ClientBatchInput {
        ClientBatchInput {
            player_id: 7,
            client_version: "1.4.2".into(),
            device_class: "desktop".into(),
            samples: vec![ClientSampleInput {
                frame_time_ms: 14.2,
                gc_collections: Some(1.0),
                gc_alloc_bytes: Some(4096.0),
                systems: vec![("animation".into(), 2.1)],
                ..ClientSampleInput::default()
            }],
        }
    }

    #[test]
    fn accepts_a_good_batch() {
        let batch = ClientBatch::parse(good()).unwrap();
        assert_eq!(batch.samples[0].gc_collections, Some(1));
        assert_eq!(batch.samples[0].gc_alloc_bytes, Some(4096));
        assert_eq!(batch.samples[0].systems["animation"], 2.1);
    }

    #[test]
    fn stats_metrics_parse_by_field_name() {
        assert_eq!(StatsMetric::parse("", None), Ok(StatsMetric::FrameTime));
        assert_eq!(StatsMetric::parse("", Some("ai")), Ok(StatsMetric::SystemUpdate));
        assert_eq!(
            StatsMetric::parse("gc_alloc_bytes", None),
            Ok(StatsMetric::GcAllocBytes)
        );
        for metric in StatsMetric::ALL {
            let system = (metric == StatsMetric::SystemUpdate).then_some("ai");
            assert_eq!(StatsMetric::parse(metric.name(), system), Ok(metric));
        }
        assert!(StatsMetric::parse("fps", None).unwrap_err().contains("gc_alloc_bytes"));
        assert!(
            StatsMetric::parse("gc_alloc_bytes", Some("ai"))
                .unwrap_err()
                .contains("system")
        );
        assert!(
            StatsMetric::parse("system_update_ms", None)
                .unwrap_err()
                .contains("needs a system")
        );
    }

    #[test]
    fn names_the_bad_field() {
        let mut b = good();
        b.samples[0].frame_time_ms = f64::NAN;
        assert!(ClientBatch::parse(b).unwrap_err().contains("samples[0].frame_time_ms"));
        let mut b = good();
        b.samples[0].gc_collections = Some(1.5);
        assert!(ClientBatch::parse(b).unwrap_err().contains("gc_collections"));
        for bad in [-1.0, 0.5, MAX_GC_ALLOC_BYTES + 1.0, f64::INFINITY] {
            let mut b = good();
            b.samples[0].gc_alloc_bytes = Some(bad);
            let err = ClientBatch::parse(b).unwrap_err();
            assert!(err.contains("samples[0].gc_alloc_bytes"), "{bad}: {err}");
        }
        let mut b = good();
        b.samples[0].gc_alloc_bytes = Some(MAX_GC_ALLOC_BYTES);
        assert!(ClientBatch::parse(b).is_ok(), "the bound itself is accepted");
        let mut b = good();
        b.samples[0].systems = vec![("Anim!".into(), 1.0)];
        assert!(ClientBatch::parse(b).unwrap_err().contains("system name"));
        let mut b = good();
        b.device_class = "Desk top".into();
        assert!(ClientBatch::parse(b).unwrap_err().contains("device_class"));
        let mut b = good();
        b.samples = vec![ClientSampleInput::default(); MAX_SAMPLES + 1];
        assert!(ClientBatch::parse(b).unwrap_err().contains("at most 500"));
    }
}
