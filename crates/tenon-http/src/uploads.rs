//! Uploaded packages waiting for an install: held in memory for a while
//! under an id, never in the registry, bounded in number.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tenon_engine::UploadedPackage;

use crate::error::{ApiResult, HttpError};

pub(crate) struct Uploads {
    max: usize,
    ttl: Duration,
    pending: Mutex<HashMap<String, (Instant, UploadedPackage)>>,
}

impl Uploads {
    pub(crate) fn new(max: usize, ttl: Duration) -> Self {
        Self {
            max,
            ttl,
            pending: Mutex::new(HashMap::new()),
        }
    }

    /// Keeps a package that previewed well; its id.
    pub(crate) fn put(&self, package: UploadedPackage) -> ApiResult<String> {
        let now = Instant::now();
        let mut pending = self.pending.lock();
        pending.retain(|_, (at, _)| now.duration_since(*at) < self.ttl);
        if pending.len() >= self.max {
            return Err(HttpError::TooManyUploads(pending.len()));
        }
        let id = uuid::Uuid::new_v4().simple().to_string();
        pending.insert(id.clone(), (now, package));
        Ok(id)
    }

    /// The package under `id`, if it has not expired.
    pub(crate) fn get(&self, id: &str) -> ApiResult<UploadedPackage> {
        let pending = self.pending.lock();
        match pending.get(id) {
            Some((at, package)) if at.elapsed() < self.ttl => Ok(package.clone()),
            _ => Err(HttpError::UnknownUpload(id.chars().take(64).collect())),
        }
    }

    /// Forgets an upload once it is installed.
    pub(crate) fn remove(&self, id: &str) {
        self.pending.lock().remove(id);
    }
}
