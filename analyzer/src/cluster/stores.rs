//! Object stores for a scheduler or an executor, found by URL as plans name them.
//!
//! On one machine `analyze` registers a store for each capture it was given. On a cluster
//! the plan only carries file URLs, so a node builds the store the first time a URL needs
//! it, from its own environment (`AWS_*`, `GOOGLE_*`, `AZURE_*`), with the same code and
//! timeouts as `analyze`, and keeps it for the next query.
use std::{path::Path, sync::Arc};

use datafusion::{
    error::{DataFusionError, Result},
    execution::object_store::{DefaultObjectStoreRegistry, ObjectStoreRegistry},
};
use object_store::ObjectStore;
use url::Url;

use crate::location::Location;

#[derive(Debug, Default)]
pub struct EnvStores {
    known: DefaultObjectStoreRegistry,
}

impl ObjectStoreRegistry for EnvStores {
    fn register_store(
        &self,
        url: &Url,
        store: Arc<dyn ObjectStore>,
    ) -> Option<Arc<dyn ObjectStore>> {
        self.known.register_store(url, store)
    }

    fn deregister_store(&self, url: &Url) -> Result<Arc<dyn ObjectStore>> {
        self.known.deregister_store(url)
    }

    fn get_store(&self, url: &Url) -> Result<Arc<dyn ObjectStore>> {
        if let Ok(store) = self.known.get_store(url) {
            return Ok(store);
        }
        let mut base = url.clone();
        base.set_path("");
        base.set_query(None);
        base.set_fragment(None);
        match Location::parse(Path::new(base.as_str())) {
            Ok(Location::Remote(remote)) => {
                self.known
                    .register_store(&remote.base, remote.store.clone());
                Ok(remote.store)
            }
            Ok(Location::Local(_)) => self.known.get_store(url),
            Err(e) => Err(DataFusionError::Execution(format!(
                "{}: {}",
                base.as_str().trim_end_matches('/'),
                e.reason()
            ))),
        }
    }
}
