//! Datasets (bundled, fetched and cached; the user's files, checked by size before they are
//! read) and uploaded weights; the latest request wins.

use std::rc::Rc;

use wasm_bindgen_futures::spawn_local;
use web_sys::File;

use tripletlab_core::data::{
    BundledDataset, FileRole, MAX_FILE_BYTES, Split, load_named_files, load_split,
};
use tripletlab_engine::model::EmbedNetConfig;
use tripletlab_protocol::{Id, Reply, TestImages};

use super::io::{self, post};
use super::session::*;

/// Makes `split` current and tells the page (unless a later load superseded `id`).
pub(super) fn make_current(
    session: &SharedSession,
    id: Id,
    split: Rc<Split>,
    name: String,
    bundled: Option<BundledDataset>,
) {
    {
        let mut s = session.borrow_mut();
        if s.latest_load != id {
            return;
        }
        s.split = Some((split.clone(), bundled));
    }
    let class_names = bundled
        .unwrap_or(BundledDataset::Mnist)
        .class_names()
        .iter()
        .map(|s| s.to_string())
        .collect();
    post(&Reply::DatasetLoaded {
        id,
        name,
        custom: bundled.is_none(),
        n_train: split.train.len(),
        n_test: split.test.len(),
        class_names,
        test: TestImages::from(&split.test),
        train_labels: split.train.labels.clone(),
    });
}

pub(super) fn load_bundled(session: SharedSession, id: Id, which: BundledDataset) {
    let cached = {
        let mut s = session.borrow_mut();
        s.latest_load = id;
        s.cache
            .iter()
            .find(|(d, _)| *d == which)
            .map(|(_, split)| split.clone())
    };
    let name = which.display_name().to_string();
    if let Some(split) = cached {
        return make_current(&session, id, split, name, Some(which));
    }
    post(&Reply::DatasetLoading {
        id,
        name: name.clone(),
    });
    spawn_local(async move {
        let mut files: Vec<Vec<u8>> = Vec::with_capacity(4);
        for role in FileRole::ALL {
            if session.borrow().latest_load != id {
                return;
            }
            match io::fetch_bytes(&which.file_path(role)).await {
                Ok(bytes) => files.push(bytes),
                Err(e) => {
                    if session.borrow().latest_load == id {
                        post(&Reply::DatasetFailed {
                            id,
                            message: format!("could not load the bundled {name}: {e}"),
                        });
                    }
                    return;
                }
            }
        }
        if session.borrow().latest_load != id {
            return;
        }
        match load_split(&files[0], &files[1], &files[2], &files[3]) {
            Ok(split) => {
                let split = Rc::new(split);
                session.borrow_mut().cache.push((which, split.clone()));
                make_current(&session, id, split, name, Some(which));
            }
            Err(e) => post(&Reply::DatasetFailed {
                id,
                message: format!("the bundled {name} is not readable: {e}"),
            }),
        }
    });
}

pub(super) fn load_files(
    session: SharedSession,
    id: Id,
    names: Vec<String>,
    sizes: Vec<u64>,
    files: Vec<File>,
) {
    session.borrow_mut().latest_load = id;
    let reject = move |message: String| post(&Reply::FilesRejected { id, message });
    if files.len() != names.len() || sizes.len() != names.len() {
        return reject("the files did not reach the worker".into());
    }
    if let Some((name, size)) = names.iter().zip(&sizes).find(|(_, s)| **s > MAX_FILE_BYTES) {
        return reject(format!(
            "{name} is {} MB; files of up to {} MB are accepted",
            size >> 20,
            MAX_FILE_BYTES >> 20
        ));
    }
    spawn_local(async move {
        let mut named: Vec<(String, Vec<u8>)> = Vec::new();
        for f in &files {
            match io::file_bytes(f).await {
                Ok(bytes) => named.push((f.name(), bytes)),
                Err(e) => return reject(e),
            }
        }
        let recognised = named
            .iter()
            .filter(|(n, _)| tripletlab_core::data::role_from_file_name(n).is_some())
            .count();
        if recognised == 0 {
            return reject(format!(
                "none of {} is named like an MNIST file (expected {})",
                names.join(", "),
                FileRole::ALL.map(|r| r.file_name()).join(", ")
            ));
        }
        let refs: Vec<(&str, &[u8])> = named
            .iter()
            .map(|(n, b)| (n.as_str(), b.as_slice()))
            .collect();
        match load_named_files(&refs) {
            Ok(split) => {
                let label = format!(
                    "your files ({} train / {} test)",
                    split.train.len(),
                    split.test.len()
                );
                let split = Rc::new(split);
                session.borrow_mut().custom = Some((label.clone(), split.clone()));
                make_current(&session, id, split, label, None);
            }
            Err(e) => reject(format!("could not open your files: {e}")),
        }
    });
}

pub(super) fn load_weights(session: SharedSession, name: String, files: Vec<File>) {
    spawn_local(async move {
        let Some(file) = files.first() else {
            return post(&Reply::WeightsRejected {
                message: format!("{name}: the file did not reach the worker"),
            });
        };
        let bytes = match io::file_bytes(file).await {
            Ok(b) => b,
            Err(e) => return post(&Reply::WeightsRejected { message: e }),
        };
        let device = session.borrow().device.as_ref().map(|d| d.device.clone());
        let Some(device) = device else {
            return post(&Reply::WeightsRejected {
                message: "the device is not ready yet".into(),
            });
        };
        match EmbedNetConfig::new().load_safetensors(&bytes, &device) {
            Ok(_) => {
                session.borrow_mut().weights = Some((name.clone(), bytes));
                post(&Reply::WeightsLoaded { name });
            }
            Err(e) => post(&Reply::WeightsRejected {
                message: format!("{name}: {e}"),
            }),
        }
    });
}
