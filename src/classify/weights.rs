//! The weights file: a versioned, checksummed, little-endian layout.
//!
//! ```text
//! offset  size              field
//! 0       4                 magic "TRCW"
//! 4       4  u32            format version (2)
//! 8       4  u32            feature set id (features::FEATURE_SET)
//! 12      4  u32            bucket bits b (buckets = 2^b, 8..=24)
//! 16      4  u32            outputs (11 task logits + 1 difficulty logit)
//! 20      4  u32            numeric feature count
//! 24      4 * outputs f32   scale of each output column of the table
//! ..      4 * outputs f32   bias of each output
//! ..      4 * dense * outputs f32   numeric feature weights, row-major
//! ..      2 * 2^b * outputs i16     hashed feature table, row-major,
//!                                   each value within ±TABLE_LIMIT
//! end-4   4  u32            CRC-32 (IEEE) of every byte before it
//! ```

use std::path::PathBuf;

use crate::classify::features::{DENSE_COUNT, FEATURE_SET};
use crate::task::TaskType;

pub const MAGIC: [u8; 4] = *b"TRCW";
/// Version 2 bounds the table values by [`TABLE_LIMIT`], and version 1 used
/// the full i16 range.
pub const VERSION: u32 = 2;

/// The maximum magnitude of a table value. The classifier sums rows in
/// 16-bit lanes, [`ROWS_PER_I16_SUM`] rows at a time, so the bound keeps
/// those sums from overflowing.
pub const TABLE_LIMIT: i16 = 2047;

/// Rows whose sum always fits in an i16 lane.
pub const ROWS_PER_I16_SUM: usize = (i16::MAX / TABLE_LIMIT) as usize;

/// Outputs per feature row: one logit per task type, then the difficulty
/// logit.
pub const OUTPUTS: usize = TaskType::COUNT + 1;

/// The column of the difficulty logit.
pub const DIFFICULTY: usize = TaskType::COUNT;

pub const MIN_BUCKET_BITS: u32 = 8;
pub const MAX_BUCKET_BITS: u32 = 24;

const HEADER_LEN: usize = 24;
const CHECKSUM_LEN: usize = 4;

/// The decoded model: a hashed feature table quantized to i16 with one
/// scale per output, plus full-precision biases and numeric weights.
#[derive(Clone, Debug, PartialEq)]
pub struct Weights {
    pub bucket_bits: u32,
    pub scales: [f32; OUTPUTS],
    pub bias: [f32; OUTPUTS],
    pub dense: [[f32; OUTPUTS]; DENSE_COUNT],
    pub rows: Vec<[i16; OUTPUTS]>,
}

/// The reason a weights file was rejected.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    #[error("failed to read weights file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid weights file: {len} bytes is shorter than the {min}-byte header and checksum")]
    TooShort { len: usize, min: usize },
    #[error("invalid weights file: magic is {found:?}, expected {MAGIC:?} (\"TRCW\")")]
    BadMagic { found: [u8; 4] },
    #[error("unsupported weights format version {found}; this build reads version {VERSION}")]
    UnsupportedVersion { found: u32 },
    #[error(
        "weights were trained for feature set {found}, this build extracts feature set \
         {FEATURE_SET}; retrain them with `triage train`"
    )]
    FeatureSetMismatch { found: u32 },
    #[error("invalid weights header: {field} is {found}, expected {expected}")]
    BadHeader {
        field: &'static str,
        found: u32,
        expected: String,
    },
    #[error("invalid weights file size: {found} bytes, the header implies {expected}")]
    SizeMismatch { found: usize, expected: usize },
    #[error(
        "weights checksum mismatch: stored {stored:#010x}, computed {computed:#010x}; the file is corrupt"
    )]
    ChecksumMismatch { stored: u32, computed: u32 },
    #[error("invalid weights: a scale, bias or numeric weight is not a finite number")]
    NonFinite,
    #[error(
        "invalid weights: table value {value} in row {row} is outside ±{TABLE_LIMIT}; \
         retrain the weights with `triage train`"
    )]
    OutOfRange { row: usize, value: i16 },
}

impl WeightsError {
    /// Returns a fixed, low-cardinality label for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            WeightsError::Read { .. } => "read",
            WeightsError::TooShort { .. } => "too_short",
            WeightsError::BadMagic { .. } => "magic",
            WeightsError::UnsupportedVersion { .. } => "version",
            WeightsError::FeatureSetMismatch { .. } => "feature_set",
            WeightsError::BadHeader { .. } => "header",
            WeightsError::SizeMismatch { .. } => "size",
            WeightsError::ChecksumMismatch { .. } => "checksum",
            WeightsError::NonFinite => "non_finite",
            WeightsError::OutOfRange { .. } => "out_of_range",
        }
    }
}

/// Returns the file size that a table of `2^bucket_bits` rows needs.
pub fn encoded_len(bucket_bits: u32) -> usize {
    let floats = OUTPUTS * 2 + DENSE_COUNT * OUTPUTS;
    HEADER_LEN + floats * 4 + (1usize << bucket_bits) * OUTPUTS * 2 + CHECKSUM_LEN
}

impl Weights {
    /// Serializes the weights in the layout described at the top of this
    /// module.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(encoded_len(self.bucket_bits));
        out.extend_from_slice(&MAGIC);
        for value in [
            VERSION,
            FEATURE_SET,
            self.bucket_bits,
            OUTPUTS as u32,
            DENSE_COUNT as u32,
        ] {
            out.extend_from_slice(&value.to_le_bytes());
        }
        let floats = self
            .scales
            .iter()
            .chain(&self.bias)
            .chain(self.dense.iter().flatten());
        for value in floats {
            out.extend_from_slice(&value.to_le_bytes());
        }
        for value in self.rows.iter().flatten() {
            out.extend_from_slice(&value.to_le_bytes());
        }
        let checksum = crc32fast::hash(&out);
        out.extend_from_slice(&checksum.to_le_bytes());
        out
    }

    /// Parses and validates a weights file: magic, version, feature set,
    /// shape, size and checksum, in that order.
    pub fn decode(bytes: &[u8]) -> Result<Weights, WeightsError> {
        let min = HEADER_LEN + CHECKSUM_LEN;
        if bytes.len() < min {
            return Err(WeightsError::TooShort {
                len: bytes.len(),
                min,
            });
        }
        let mut reader = Reader { bytes, pos: 0 };
        let magic = reader.array::<4>();
        if magic != MAGIC {
            return Err(WeightsError::BadMagic { found: magic });
        }
        let bucket_bits = check_header(&mut reader)?;
        let expected = encoded_len(bucket_bits);
        if bytes.len() != expected {
            return Err(WeightsError::SizeMismatch {
                found: bytes.len(),
                expected,
            });
        }
        verify_checksum(bytes)?;
        read_body(&mut reader, bucket_bits)
    }
}

/// Checks the header fields after the magic and returns the bucket bits.
fn check_header(reader: &mut Reader<'_>) -> Result<u32, WeightsError> {
    let version = reader.u32();
    if version != VERSION {
        return Err(WeightsError::UnsupportedVersion { found: version });
    }
    let feature_set = reader.u32();
    if feature_set != FEATURE_SET {
        return Err(WeightsError::FeatureSetMismatch { found: feature_set });
    }
    let bucket_bits = reader.u32();
    if !(MIN_BUCKET_BITS..=MAX_BUCKET_BITS).contains(&bucket_bits) {
        return Err(WeightsError::BadHeader {
            field: "bucket bits",
            found: bucket_bits,
            expected: format!("{MIN_BUCKET_BITS}..={MAX_BUCKET_BITS}"),
        });
    }
    expect_field(reader.u32(), "outputs", OUTPUTS)?;
    expect_field(reader.u32(), "numeric feature count", DENSE_COUNT)?;
    Ok(bucket_bits)
}

fn expect_field(found: u32, field: &'static str, expected: usize) -> Result<(), WeightsError> {
    if found as usize == expected {
        return Ok(());
    }
    Err(WeightsError::BadHeader {
        field,
        found,
        expected: expected.to_string(),
    })
}

fn verify_checksum(bytes: &[u8]) -> Result<(), WeightsError> {
    let (body, tail) = bytes.split_at(bytes.len() - CHECKSUM_LEN);
    let mut stored = [0; 4];
    stored.copy_from_slice(tail);
    let stored = u32::from_le_bytes(stored);
    let computed = crc32fast::hash(body);
    if stored != computed {
        return Err(WeightsError::ChecksumMismatch { stored, computed });
    }
    Ok(())
}

/// Reads the arrays after the header; the caller has already checked the
/// size, so every read is in bounds.
fn read_body(reader: &mut Reader<'_>, bucket_bits: u32) -> Result<Weights, WeightsError> {
    let scales = reader.f32_row();
    let bias = reader.f32_row();
    let mut dense = [[0.0; OUTPUTS]; DENSE_COUNT];
    for row in &mut dense {
        *row = reader.f32_row();
    }
    let all_finite = scales
        .iter()
        .chain(&bias)
        .chain(dense.iter().flatten())
        .all(|v| v.is_finite());
    if !all_finite {
        return Err(WeightsError::NonFinite);
    }
    let rows: Vec<[i16; OUTPUTS]> = (0..1usize << bucket_bits)
        .map(|_| reader.i16_row())
        .collect();
    for (index, row) in rows.iter().enumerate() {
        if let Some(&value) = row.iter().find(|v| v.unsigned_abs() > TABLE_LIMIT as u16) {
            return Err(WeightsError::OutOfRange { row: index, value });
        }
    }
    Ok(Weights {
        bucket_bits,
        scales,
        bias,
        dense,
        rows,
    })
}

/// A cursor over a buffer whose length was validated before reading.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0; N];
        out.copy_from_slice(&self.bytes[self.pos..self.pos + N]);
        self.pos += N;
        out
    }

    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.array())
    }

    fn f32_row(&mut self) -> [f32; OUTPUTS] {
        std::array::from_fn(|_| f32::from_le_bytes(self.array()))
    }

    fn i16_row(&mut self) -> [i16; OUTPUTS] {
        std::array::from_fn(|_| i16::from_le_bytes(self.array()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Weights {
        let bucket_bits = MIN_BUCKET_BITS;
        let rows = (0..1usize << bucket_bits)
            .map(|i| std::array::from_fn(|k| ((i * 31 + k * 7) % 4000) as i16 - 2000))
            .collect();
        Weights {
            bucket_bits,
            scales: std::array::from_fn(|k| 0.001 * (k + 1) as f32),
            bias: std::array::from_fn(|k| k as f32 - 5.5),
            dense: std::array::from_fn(|i| std::array::from_fn(|k| (i * k) as f32 * 0.01)),
            rows,
        }
    }

    /// Rewrites the checksum so a test can corrupt a field and still get
    /// past the checksum check.
    fn reseal(bytes: &mut [u8]) {
        let end = bytes.len() - CHECKSUM_LEN;
        let checksum = crc32fast::hash(&bytes[..end]);
        bytes[end..].copy_from_slice(&checksum.to_le_bytes());
    }

    #[test]
    fn round_trip() {
        let weights = sample();
        let bytes = weights.encode();
        assert_eq!(bytes.len(), encoded_len(weights.bucket_bits));
        assert_eq!(Weights::decode(&bytes).unwrap(), weights);
    }

    #[test]
    fn rejects_bad_magic() {
        let mut bytes = sample().encode();
        bytes[0] = b'X';
        reseal(&mut bytes);
        let err = Weights::decode(&bytes).unwrap_err();
        assert!(matches!(err, WeightsError::BadMagic { .. }), "{err}");
    }

    #[test]
    fn rejects_other_version() {
        let mut bytes = sample().encode();
        for version in [1u32, 3] {
            bytes[4..8].copy_from_slice(&version.to_le_bytes());
            reseal(&mut bytes);
            let err = Weights::decode(&bytes).unwrap_err();
            assert!(
                matches!(err, WeightsError::UnsupportedVersion { found } if found == version),
                "{err}"
            );
        }
    }

    #[test]
    fn rejects_other_feature_set() {
        let mut bytes = sample().encode();
        bytes[8..12].copy_from_slice(&99u32.to_le_bytes());
        reseal(&mut bytes);
        let err = Weights::decode(&bytes).unwrap_err();
        assert!(
            matches!(err, WeightsError::FeatureSetMismatch { found: 99 }),
            "{err}"
        );
    }

    #[test]
    fn rejects_bad_shape() {
        for (offset, value) in [(12, 40u32), (16, 3), (20, 7)] {
            let mut bytes = sample().encode();
            bytes[offset..offset + 4].copy_from_slice(&value.to_le_bytes());
            reseal(&mut bytes);
            let err = Weights::decode(&bytes).unwrap_err();
            assert!(
                matches!(err, WeightsError::BadHeader { .. }),
                "offset {offset}: {err}"
            );
        }
    }

    #[test]
    fn rejects_wrong_size() {
        let bytes = sample().encode();
        let mut truncated = bytes[..bytes.len() - 10].to_vec();
        reseal(&mut truncated);
        let err = Weights::decode(&truncated).unwrap_err();
        assert!(matches!(err, WeightsError::SizeMismatch { .. }), "{err}");

        let mut extended = bytes.clone();
        extended.extend_from_slice(&[0; 6]);
        let err = Weights::decode(&extended).unwrap_err();
        assert!(matches!(err, WeightsError::SizeMismatch { .. }), "{err}");

        let err = Weights::decode(&bytes[..10]).unwrap_err();
        assert!(matches!(err, WeightsError::TooShort { .. }), "{err}");
    }

    #[test]
    fn rejects_any_flipped_byte() {
        let bytes = sample().encode();
        let body_end = bytes.len() - CHECKSUM_LEN;
        for offset in [
            HEADER_LEN,
            HEADER_LEN + 100,
            body_end / 2,
            body_end - 1,
            body_end,
        ] {
            let mut corrupt = bytes.clone();
            corrupt[offset] ^= 0x40;
            let err = Weights::decode(&corrupt).unwrap_err();
            assert!(
                matches!(err, WeightsError::ChecksumMismatch { .. }),
                "offset {offset}: {err}"
            );
        }
    }

    #[test]
    fn rejects_table_values_out_of_range() {
        for value in [TABLE_LIMIT + 1, -TABLE_LIMIT - 1, i16::MIN] {
            let mut weights = sample();
            weights.rows[17][5] = value;
            let err = Weights::decode(&weights.encode()).unwrap_err();
            assert!(
                matches!(err, WeightsError::OutOfRange { row: 17, value: v } if v == value),
                "{err}"
            );
        }
        let mut weights = sample();
        weights.rows[17][5] = -TABLE_LIMIT;
        assert!(Weights::decode(&weights.encode()).is_ok());
    }

    #[test]
    fn rejects_non_finite_values() {
        let mut weights = sample();
        weights.bias[3] = f32::NAN;
        let err = Weights::decode(&weights.encode()).unwrap_err();
        assert!(matches!(err, WeightsError::NonFinite), "{err}");
    }
}
