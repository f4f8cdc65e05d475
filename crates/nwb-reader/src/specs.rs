//! Which types extend ElectricalSeries, from the file's cached specifications (nwb-layout.md §8).

use std::collections::BTreeMap;

use serde_json::Value;

/// `type name -> (namespace, parent type name)` over every cached namespace, plus the core types
/// this crate knows without a cache.
#[derive(Debug, Default, Clone)]
pub(crate) struct TypeTree {
    parents: BTreeMap<String, Vec<(String, String)>>,
}

/// How a typed object relates to ElectricalSeries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SeriesKind {
    /// ElectricalSeries or a subtype that is not a SpikeEventSeries: converted.
    Electrical,
    /// SpikeEventSeries or a subtype: waveform snippets, never converted.
    SpikeEvents,
    /// Anything else.
    Other,
}

impl TypeTree {
    /// The built-in core knowledge, used for files without cached specs.
    pub(crate) fn builtin() -> Self {
        let mut tree = Self::default();
        for (def, inc) in [
            ("ElectricalSeries", "TimeSeries"),
            ("SpikeEventSeries", "ElectricalSeries"),
            ("TimeSeries", "NWBDataInterface"),
        ] {
            tree.add("core", def, inc);
        }
        tree
    }

    fn add(&mut self, namespace: &str, def: &str, inc: &str) {
        let entry = self.parents.entry(def.to_owned()).or_default();
        if !entry.iter().any(|(ns, _)| ns == namespace) {
            entry.push((namespace.to_owned(), inc.to_owned()));
        }
    }

    /// Adds every `*_def`/`*_inc` pair found (recursively) in one cached schema file's JSON.
    pub(crate) fn add_schema_json(
        &mut self,
        namespace: &str,
        json: &str,
    ) -> Result<(), serde_json::Error> {
        let value: Value = serde_json::from_str(json)?;
        self.walk(namespace, &value);
        Ok(())
    }

    fn walk(&mut self, namespace: &str, value: &Value) {
        match value {
            Value::Object(map) => {
                let def = map
                    .get("neurodata_type_def")
                    .or_else(|| map.get("data_type_def"));
                let inc = map
                    .get("neurodata_type_inc")
                    .or_else(|| map.get("data_type_inc"));
                if let (Some(Value::String(def)), Some(Value::String(inc))) = (def, inc) {
                    self.add(namespace, def, inc);
                }
                for v in map.values() {
                    self.walk(namespace, v);
                }
            }
            Value::Array(items) => items.iter().for_each(|v| self.walk(namespace, v)),
            _ => {}
        }
    }

    /// Walks up from `type_name` (preferring the object's own namespace when a name is defined
    /// twice) until ElectricalSeries or SpikeEventSeries, no parent, or a cycle.
    pub(crate) fn classify(&self, type_name: &str, namespace: Option<&str>) -> SeriesKind {
        let mut current = type_name.to_owned();
        let mut seen = Vec::new();
        loop {
            match current.as_str() {
                "SpikeEventSeries" => return SeriesKind::SpikeEvents,
                "ElectricalSeries" => return SeriesKind::Electrical,
                _ => {}
            }
            if seen.contains(&current) {
                return SeriesKind::Other;
            }
            let Some(candidates) = self.parents.get(&current) else {
                return SeriesKind::Other;
            };
            let parent = namespace
                .and_then(|ns| candidates.iter().find(|(n, _)| n == ns))
                .or_else(|| candidates.first())
                .map(|(_, inc)| inc.clone());
            seen.push(current);
            match parent {
                Some(p) => current = p,
                None => return SeriesKind::Other,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_knows_the_core_types() {
        let t = TypeTree::builtin();
        assert_eq!(
            t.classify("ElectricalSeries", Some("core")),
            SeriesKind::Electrical
        );
        assert_eq!(
            t.classify("SpikeEventSeries", Some("core")),
            SeriesKind::SpikeEvents
        );
        assert_eq!(t.classify("TimeSeries", Some("core")), SeriesKind::Other);
        assert_eq!(
            t.classify("MyElectricalSeries", Some("ndx")),
            SeriesKind::Other
        );
    }

    #[test]
    fn nested_extension_specs_and_cycles() {
        let mut t = TypeTree::builtin();
        let json = r#"{"groups":[{"neurodata_type_def":"MyElectricalSeries","neurodata_type_inc":"ElectricalSeries",
            "groups":[{"neurodata_type_def":"MyDeepSeries","neurodata_type_inc":"MyElectricalSeries"}]},
            {"neurodata_type_def":"MySpikes","neurodata_type_inc":"SpikeEventSeries"},
            {"data_type_def":"LoopA","data_type_inc":"LoopB"},{"data_type_def":"LoopB","data_type_inc":"LoopA"}]}"#;
        t.add_schema_json("ndx-test-ephys", json).unwrap();
        assert_eq!(
            t.classify("MyDeepSeries", Some("ndx-test-ephys")),
            SeriesKind::Electrical
        );
        assert_eq!(t.classify("MySpikes", None), SeriesKind::SpikeEvents);
        assert_eq!(t.classify("LoopA", None), SeriesKind::Other);
    }
}
