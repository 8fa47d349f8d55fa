//! A bounded cursor over untrusted bytes (rustls's `Reader`): every read is checked, every
//! failure becomes a [`ParseError`] carrying the context and the absolute offset.

use crate::error::{Context, ParseError, ParseErrorKind};

/// Reads big-endian fields from a slice without ever indexing past its end.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Offset of `buf[0]` in the buffer the caller gave to the public parser.
    base: usize,
    context: Context,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8], base: usize, context: Context) -> Self {
        Self { buf, pos: 0, base, context }
    }

    /// Absolute offset of the next byte.
    pub(crate) fn offset(&self) -> usize {
        self.base + self.pos
    }

    pub(crate) fn context(&self) -> Context {
        self.context
    }

    /// An error at the current position.
    pub(crate) fn error(&self, kind: ParseErrorKind) -> ParseError {
        self.error_at(self.offset(), kind)
    }

    /// An error at an absolute offset, in this reader's context.
    pub(crate) fn error_at(&self, offset: usize, kind: ParseErrorKind) -> ParseError {
        ParseError { context: self.context, offset, kind }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    pub(crate) fn take(&mut self, len: usize, what: &'static str) -> Result<&'a [u8], ParseError> {
        let end = self.pos.checked_add(len).filter(|&end| end <= self.buf.len());
        match end.and_then(|end| self.buf.get(self.pos..end)) {
            Some(bytes) => {
                self.pos += len;
                Ok(bytes)
            }
            None => Err(self.error(ParseErrorKind::MissingData(what))),
        }
    }

    pub(crate) fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], ParseError> {
        let bytes = self.take(N, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, ParseError> {
        Ok(self.array::<1>(what)?[0])
    }

    pub(crate) fn u16(&mut self, what: &'static str) -> Result<u16, ParseError> {
        Ok(u16::from_be_bytes(self.array(what)?))
    }

    pub(crate) fn u32(&mut self, what: &'static str) -> Result<u32, ParseError> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }

    /// Everything left.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let rest = self.buf.get(self.pos..).unwrap_or_default();
        self.pos = self.buf.len();
        rest
    }

    /// A sub-reader over the next `len` bytes, with its own context.
    pub(crate) fn sub(
        &mut self,
        len: usize,
        context: Context,
        what: &'static str,
    ) -> Result<Self, ParseError> {
        let base = self.offset();
        let bytes = self.take(len, what)?;
        Ok(Self::new(bytes, base, context))
    }

    /// Fails with `TrailingData` if anything is left.
    pub(crate) fn expect_empty(&self, what: &'static str) -> Result<(), ParseError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(self.error(ParseErrorKind::TrailingData(what)))
        }
    }
}

/// Back-patches the big-endian u16 at `out[length_field..]` with the number of bytes from
/// `start` to the end of `out` (the structure's length, its own header included).
///
/// Lengths above `u16::MAX` saturate: such a structure cannot be encoded, and the saturated
/// length makes it fail to parse instead of being misread as a shorter valid one.
pub(crate) fn patch_u16_len(out: &mut [u8], length_field: usize, start: usize) {
    let len = u16::try_from(out.len().saturating_sub(start)).unwrap_or(u16::MAX);
    if let Some(field) = out.get_mut(length_field..length_field + 2) {
        field.copy_from_slice(&len.to_be_bytes());
    }
}
