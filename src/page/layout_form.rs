//! The UMAP fields of the projection panel (n_neighbors, min_dist), as typed, and their check
//! against the points there are: a [`LayoutRequest`] or one line per field saying what is
//! wrong. Plain data: no browser, no yew.

use std::collections::BTreeMap;

use tripletlab_core::projection::UmapParams;
use tripletlab_core::run::settings::{number, whole};
use tripletlab_protocol::LayoutRequest;

/// The field keys (also the URL's keys).
pub const N_NEIGHBORS: &str = "n_neighbors";
/// See [`N_NEIGHBORS`].
pub const MIN_DIST: &str = "min_dist";

/// The UMAP fields as typed.
#[derive(Clone, Debug, PartialEq)]
pub struct LayoutForm {
    /// Neighbourhood size.
    pub n_neighbors: String,
    /// Minimum distance.
    pub min_dist: String,
}

impl Default for LayoutForm {
    /// umap-learn's defaults.
    fn default() -> Self {
        let d = UmapParams::default();
        Self {
            n_neighbors: d.n_neighbors.to_string(),
            min_dist: d.min_dist.to_string(),
        }
    }
}

impl LayoutForm {
    /// The defaults overridden by the URL's `n_neighbors=` and `min_dist=` (the last of each).
    pub fn from_pairs(pairs: &[(String, String)]) -> Self {
        let mut form = Self::default();
        for (k, v) in pairs {
            form.set(k, v.clone());
        }
        form
    }

    /// Sets field `key` (other keys are ignored).
    pub fn set(&mut self, key: &str, value: String) {
        match key {
            N_NEIGHBORS => self.n_neighbors = value,
            MIN_DIST => self.min_dist = value,
            _ => {}
        }
    }

    /// The pairs to put in the URL, so that a shared link keeps them: the fields that differ
    /// from the defaults, as typed (trimmed).
    pub fn to_pairs(&self) -> Vec<(&'static str, String)> {
        let defaults = Self::default();
        [
            (N_NEIGHBORS, &self.n_neighbors, &defaults.n_neighbors),
            (MIN_DIST, &self.min_dist, &defaults.min_dist),
        ]
        .into_iter()
        .filter(|(_, value, default)| value.trim() != default.as_str())
        .map(|(key, value, _)| (key, value.trim().to_string()))
        .collect()
    }

    /// The UMAP request for `points` points (0 while there are none yet: any n_neighbors ≥ 2
    /// passes), or a message per field key.
    pub fn umap(&self, points: usize) -> Result<LayoutRequest, BTreeMap<&'static str, String>> {
        let mut errors = BTreeMap::new();
        let raw = self.n_neighbors.trim();
        let most = if points == 0 {
            usize::MAX
        } else {
            points.max(2)
        };
        let n_neighbors = match whole::<usize>(raw) {
            Ok(k) if (2..=most).contains(&k) => Some(k),
            Ok(k) if points == 0 => {
                errors.insert(N_NEIGHBORS, format!("{k} is too small: at least 2"));
                None
            }
            Ok(k) => {
                errors.insert(
                    N_NEIGHBORS,
                    format!("{k} is out of range: 2 to {most} (the number of points)"),
                );
                None
            }
            Err(m) => {
                errors.insert(N_NEIGHBORS, m);
                None
            }
        };
        let raw = self.min_dist.trim();
        let min_dist = match number::<f32>(raw) {
            Ok(d) if (0.0..=1.0).contains(&d) => Some(d),
            Ok(_) => {
                errors.insert(MIN_DIST, format!("{raw} is out of range: 0 to 1"));
                None
            }
            Err(m) => {
                errors.insert(MIN_DIST, m);
                None
            }
        };
        match (n_neighbors, min_dist) {
            (Some(n_neighbors), Some(min_dist)) if errors.is_empty() => Ok(LayoutRequest::Umap {
                n_neighbors,
                min_dist,
            }),
            _ => Err(errors),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_defaults_are_umap_learns_and_the_url_overrides_them() {
        assert_eq!(
            LayoutForm::default().umap(2000),
            Ok(LayoutRequest::Umap {
                n_neighbors: 15,
                min_dist: 0.1
            })
        );
        let form = LayoutForm::from_pairs(&pairs(&[
            ("n_neighbors", "30"),
            ("epochs", "2"),
            ("min_dist", " 0.5 "),
        ]));
        assert_eq!(
            form.umap(2000),
            Ok(LayoutRequest::Umap {
                n_neighbors: 30,
                min_dist: 0.5
            })
        );
    }

    #[test]
    fn the_url_keeps_what_differs_from_the_defaults() {
        let mut form = LayoutForm::default();
        assert!(form.to_pairs().is_empty());
        form.set(MIN_DIST, " 0.25 ".into());
        assert_eq!(form.to_pairs(), vec![(MIN_DIST, "0.25".to_string())]);
        form.set(N_NEIGHBORS, "30".into());
        let link: Vec<(String, String)> = form
            .to_pairs()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        assert_eq!(link.len(), 2);
        assert_eq!(
            LayoutForm::from_pairs(&link).umap(100),
            form.umap(100),
            "the link gives the same request"
        );
        form.set(N_NEIGHBORS, "15".into());
        assert_eq!(form.to_pairs(), vec![(MIN_DIST, "0.25".to_string())]);
    }

    #[test]
    fn each_bad_field_gets_its_own_line() {
        let mut form = LayoutForm::default();
        form.set(N_NEIGHBORS, "1".into());
        form.set(MIN_DIST, "1.5".into());
        let e = form.umap(100).unwrap_err();
        assert_eq!(
            e[N_NEIGHBORS],
            "1 is out of range: 2 to 100 (the number of points)"
        );
        assert_eq!(e[MIN_DIST], "1.5 is out of range: 0 to 1");
        form.set(N_NEIGHBORS, "101".into());
        form.set(MIN_DIST, "NaN".into());
        let e = form.umap(100).unwrap_err();
        assert!(e[N_NEIGHBORS].starts_with("101 is out of range"));
        assert_eq!(e[MIN_DIST], "NaN is out of range: 0 to 1");
        form.set(N_NEIGHBORS, "ten".into());
        form.set(MIN_DIST, "".into());
        let e = form.umap(100).unwrap_err();
        assert_eq!(e[N_NEIGHBORS], "'ten' is not a whole number");
        assert_eq!(e[MIN_DIST], "'' is not a number");
        form.set(N_NEIGHBORS, "100".into());
        form.set(MIN_DIST, "0".into());
        assert!(form.umap(100).is_ok());
        // Before any embeddings exist only the lower bound is known.
        form.set(N_NEIGHBORS, "5000".into());
        assert!(form.umap(0).is_ok());
        form.set(N_NEIGHBORS, "1".into());
        assert_eq!(
            form.umap(0).unwrap_err()[N_NEIGHBORS],
            "1 is too small: at least 2"
        );
    }
}
