//! A binary's functions by address, and its build ID.
use object::{Object, ObjectSymbol};

/// Functions by address, from `.symtab`, else `.dynsym` (all a stripped binary keeps).
#[derive(Debug, Default)]
pub struct SymbolTable {
    /// (start, end, name), sorted by start.
    symbols: Vec<(u64, u64, Box<str>)>,
}

impl SymbolTable {
    pub fn read(file: &object::File<'_>) -> Self {
        let from = |syms: object::SymbolIterator<'_, '_>| -> Vec<_> {
            syms.filter(|s| s.kind() == object::SymbolKind::Text && s.address() != 0)
                .filter_map(|s| {
                    let name = s.name().ok()?;
                    let end = s.address().saturating_add(s.size().max(1));
                    Some((s.address(), end, name.into()))
                })
                .collect()
        };
        let full = from(file.symbols());
        let mut symbols = if full.is_empty() {
            from(file.dynamic_symbols())
        } else {
            full
        };
        symbols.sort_unstable_by_key(|(start, _, _)| *start);
        Self { symbols }
    }

    /// The function whose code holds `address` (as the binary numbers it), as stored.
    pub fn name(&self, address: u64) -> Option<&str> {
        let i = self
            .symbols
            .partition_point(|(start, _, _)| *start <= address)
            .checked_sub(1)?;
        let (_, end, name) = &self.symbols[i];
        (address < *end).then_some(&**name)
    }

    pub fn is_empty(&self) -> bool {
        self.symbols.is_empty()
    }

    /// About how much memory the table holds: what a cache of tables is bounded by.
    pub fn bytes(&self) -> usize {
        self.symbols.len() * std::mem::size_of::<(u64, u64, Box<str>)>()
            + self.symbols.iter().map(|(_, _, n)| n.len()).sum::<usize>()
    }
}

/// Longest build ID kept: linkers write 16 or 20 bytes (a SHA-1), and a hostile binary's
/// could be as long as it likes, to be copied into every frame of every chain.
const MAX_BUILD_ID: usize = 64;

/// The binary's GNU build ID (`.note.gnu.build-id`), which its debug file shares; `None`
/// for none, or one longer than any linker writes.
pub fn build_id(file: &object::File<'_>) -> Option<Vec<u8>> {
    let id = file.build_id().ok().flatten()?;
    (!id.is_empty() && id.len() <= MAX_BUILD_ID).then(|| id.to_vec())
}
