//! A Wallyt message is a flat set of named string fields. It is kept as a sorted map (byte
//! order of the names, which is also the order signatures and replies use) and never bound
//! to a fixed struct before it is verified: replies carry fields no document lists, and the
//! signature covers all of them.

use std::collections::BTreeMap;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fields(BTreeMap<String, String>);

impl Fields {
    pub fn new() -> Fields {
        Fields::default()
    }

    /// Sets a field; empty values are dropped, since the protocol never sends them.
    pub fn set(&mut self, name: &str, value: impl Into<String>) -> &mut Fields {
        let value = value.into();
        if value.is_empty() {
            self.0.remove(name);
        } else {
            self.0.insert(name.to_owned(), value);
        }
        self
    }

    pub fn with(mut self, name: &str, value: impl Into<String>) -> Fields {
        self.set(name, value);
        self
    }

    /// Inserts exactly what was received, empty or not (for decoding and verification).
    pub(crate) fn insert_raw(&mut self, name: String, value: String) -> Option<String> {
        self.0.insert(name, value)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    pub fn remove(&mut self, name: &str) -> Option<String> {
        self.0.remove(name)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Fields {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Fields {
        Fields(
            iter.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}
