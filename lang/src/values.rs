//! Values files: the JSON that `from "file.json"` initial values read, and that
//! `ruleopt train` writes its learned parameters to.
//!
//! ```json
//! {"params": {"wrec.W_rec": {"shape": [128, 128], "data": [0.1, ...], "unit": 0}}}
//! ```
//!
//! Keys are qualified variable names (`proj.name`, `pop.name`, or a network-level
//! name); `data` is row-major (`[post][pre]` for synapse variables, every entry
//! including unconnected ones); `unit` is the power of time of the values, which are in
//! the language's internal units (ms): `0` (the default) for dimensionless, `1` for a
//! time in ms, `-1` for a rate per ms. Only the element count has to match the
//! variable; `shape` says how to read it.

use std::collections::BTreeMap;

/// One stored variable.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// Its shape (`[]` for a shared scalar, `[n]` per neuron, `[post, pre]` per synapse).
    pub shape: Vec<usize>,
    /// Row-major values.
    pub data: Vec<f64>,
    /// Power of time of the values (internal units).
    pub unit: i8,
}

/// The contents of a values file, by qualified name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Values {
    /// Entries by name (sorted, so a written file is deterministic).
    pub params: BTreeMap<String, Entry>,
}

impl Values {
    /// Parses a values file; the error names the offending entry or field.
    pub fn parse(text: &str) -> Result<Values, String> {
        let json: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
        let params = json
            .get("params")
            .and_then(|p| p.as_object())
            .ok_or("expected an object with a `params` object")?;
        let mut out = Values::default();
        for (name, v) in params {
            let field = |f: &str| v.get(f);
            let shape = match field("shape") {
                None => None,
                Some(s) => Some(
                    s.as_array()
                        .and_then(|a| {
                            a.iter()
                                .map(|x| x.as_u64().map(|n| n as usize))
                                .collect::<Option<Vec<_>>>()
                        })
                        .ok_or_else(|| format!("`{name}`: `shape` must be a list of sizes"))?,
                ),
            };
            let data = field("data")
                .and_then(|d| d.as_array())
                .ok_or_else(|| format!("`{name}`: `data` must be a list of numbers"))?;
            let data = data
                .iter()
                .enumerate()
                .map(|(k, x)| match x.as_f64() {
                    Some(x) if x.is_finite() => Ok(x),
                    _ => Err(format!("`{name}`: `data[{k}]` is not a finite number")),
                })
                .collect::<Result<Vec<f64>, String>>()?;
            let unit = match field("unit") {
                None => 0,
                Some(u) => u
                    .as_i64()
                    .and_then(|u| i8::try_from(u).ok())
                    .ok_or_else(|| format!("`{name}`: `unit` must be a small integer"))?,
            };
            let shape = shape.unwrap_or_else(|| vec![data.len()]);
            if shape.iter().product::<usize>() != data.len() {
                return Err(format!(
                    "`{name}`: shape {shape:?} holds {} values, `data` has {}",
                    shape.iter().product::<usize>(),
                    data.len()
                ));
            }
            out.params.insert(name.clone(), Entry { shape, data, unit });
        }
        Ok(out)
    }

    /// The file's text (parses back to the same values: floats are written in their
    /// shortest round-trip form).
    pub fn to_json(&self) -> String {
        let mut params = serde_json::Map::new();
        for (name, e) in &self.params {
            params.insert(
                name.clone(),
                serde_json::json!({"shape": e.shape, "data": e.data, "unit": e.unit}),
            );
        }
        let mut s =
            serde_json::to_string(&serde_json::json!({ "params": params })).unwrap_or_default();
        s.push('\n');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_names_bad_fields() {
        let mut v = Values::default();
        v.params.insert(
            "a.w".into(),
            Entry {
                shape: vec![2, 2],
                data: vec![0.1, -1e-300, 3.0, 1.0 / 3.0],
                unit: 0,
            },
        );
        v.params.insert(
            "tau".into(),
            Entry {
                shape: vec![],
                data: vec![20.5],
                unit: 1,
            },
        );
        assert_eq!(Values::parse(&v.to_json()).unwrap(), v);
        let err = |t: &str| Values::parse(t).unwrap_err();
        assert!(err("{").contains("not valid JSON"));
        assert!(err("{}").contains("`params`"));
        assert!(err(r#"{"params": {"x": {"data": [1, "a"]}}}"#).contains("`x`: `data[1]`"));
        assert!(err(r#"{"params": {"x": {"shape": [3], "data": [1]}}}"#).contains("holds 3"));
        assert!(err(r#"{"params": {"x": {"data": [1], "unit": 0.5}}}"#).contains("`unit`"));
        let ok = Values::parse(r#"{"params": {"x": {"data": [1, 2]}}}"#).unwrap();
        assert_eq!(ok.params["x"].shape, vec![2]);
    }
}
