//! Which names the fd table may hold, so that a rename or unlink of a name no fd or cwd
//! holds skips the scan of every fd of every process.
//!
//! That scan was the whole cost of a rename or unlink: about 18 ns per name held, so a
//! host-wide recording with 100K fds paid 1.8 ms for each unlink of a temporary file that
//! nobody had open (BENCHMARKS.md). Most renames and unlinks name a file no traced process
//! holds open, and a miss here costs one hash of the name.
//!
//! A filter, not an index: it says "maybe" for every name at or above a held one, and
//! "no" only when no held name is that name or lies below it. It never forgets on its own
//! (a close does not tell it), so it is rebuilt from the table once it has grown to twice
//! what the table holds: a "maybe" that is no longer true costs only a scan, as before.
/// Seeded per process, as the fd table's maps are: a traced program picks its own names,
/// and must not be able to make every lookup collide.
type HashSet<T> = std::collections::HashSet<T, foldhash::fast::RandomState>;

/// The smallest size past which the filter is rebuilt: a few hundred KiB, so that a
/// process opening files one after another does not rebuild every few calls.
const MIN_LIMIT: usize = 16 * 1024;

pub struct HeldNames {
    prefixes: HashSet<u64>,
    /// Past this many prefixes, the filter is rebuilt from what the table holds.
    limit: usize,
}

impl Default for HeldNames {
    fn default() -> Self {
        Self {
            prefixes: HashSet::default(),
            limit: MIN_LIMIT,
        }
    }
}

impl HeldNames {
    /// Notes a name the table now holds: the name itself and each of the names it lies
    /// below (`/a/b/c`: `/a/b/c`, `/a/b`, `/a` and the empty name before the first `/`).
    #[inline]
    pub fn hold(&mut self, name: &str) {
        prefix_hashes(name, |h| {
            self.prefixes.insert(h);
        });
    }

    /// Whether some name held may be `name` or lie below it. False means certainly not.
    pub fn may_hold(&self, name: &str) -> bool {
        self.prefixes.contains(&whole_hash(name))
    }

    /// Whether the filter has grown enough that it should be rebuilt: [`Self::clear`],
    /// every name the table holds again, then [`Self::rebuilt`].
    pub fn full(&self) -> bool {
        self.prefixes.len() > self.limit
    }

    /// Forgets every name, before the table's names are held again; then [`Self::rebuilt`].
    pub fn clear(&mut self) {
        self.prefixes.clear();
    }

    /// After a [`Self::clear`] and the names held again: the next rebuild comes when the
    /// filter has doubled.
    pub fn rebuilt(&mut self) {
        self.limit = (2 * self.prefixes.len()).max(MIN_LIMIT);
        // Keep the allocation near what is needed: a burst of names must not pin it.
        self.prefixes.shrink_to(self.limit);
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0100_0000_01b3;

/// Calls `each` with the hash of every prefix of `name` that ends before a `/` or at the
/// end: one pass, the hash carried along, so that each equals [`whole_hash`] of that
/// prefix. FNV-1a, which carries a byte at a time; the set hashes the values again.
#[inline]
fn prefix_hashes(name: &str, mut each: impl FnMut(u64)) {
    let mut h = FNV_OFFSET;
    for &b in name.as_bytes() {
        if b == b'/' {
            each(h);
        }
        h = (h ^ u64::from(b)).wrapping_mul(FNV_PRIME);
    }
    each(h);
}

fn whole_hash(name: &str) -> u64 {
    let mut whole = 0;
    prefix_hashes(name, |h| whole = h);
    whole
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_and_every_name_above_it_may_be_held_and_no_other() {
        let mut held = HeldNames::default();
        held.hold("/srv/app/app.conf");
        for name in ["/srv/app/app.conf", "/srv/app", "/srv", ""] {
            assert!(held.may_hold(name), "{name}");
        }
        for name in [
            "/srv/app/app",
            "/srv/ap",
            "/srv/app/app.conf/x",
            "/",
            "srv",
            "/etc",
        ] {
            assert!(!held.may_hold(name), "{name}");
        }
    }

    #[test]
    fn a_rebuild_keeps_what_is_held_and_drops_the_rest() {
        let mut held = HeldNames::default();
        held.hold("/a/old");
        held.clear();
        held.hold("/b/new");
        held.rebuilt();
        assert!(held.may_hold("/b/new") && held.may_hold("/b"));
        assert!(!held.may_hold("/a/old") && !held.may_hold("/a"));
        assert!(!held.full());
    }
}
