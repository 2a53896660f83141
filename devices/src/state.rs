//! Helpers shared by the devices' saved states ([`emu_core::DeviceState`]).

use emu_core::StateError;
use serde::{Deserialize, Serialize};

/// The saved state of a model with no guest-visible state: only its kind and
/// version are checked on restore.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct NoState {}

/// The [`emu_core::Device`] of a model whose guest-visible state is nothing
/// (its host handles act at once): reset does nothing, and a saved state is
/// the model's kind and version alone.
macro_rules! stateless_device {
    ($model:ty, $kind:expr, $version:expr) => {
        impl emu_core::Device for $model {
            fn reset(&mut self) {}

            fn save_state(&self) -> emu_core::DeviceState {
                emu_core::DeviceState::encode($kind, $version, &$crate::state::NoState {})
            }

            fn restore_state(
                &mut self,
                state: &emu_core::DeviceState,
            ) -> Result<(), emu_core::StateError> {
                let $crate::state::NoState {} = state.decode($kind, $version)?;
                Ok(())
            }
        }
    };
}
pub(crate) use stateless_device;

/// A [`StateError::Invalid`] for model `kind`.
pub(crate) fn invalid(kind: &str, reason: impl Into<String>) -> StateError {
    StateError::Invalid {
        kind: kind.to_owned(),
        reason: reason.into(),
    }
}

/// Byte buffers (pixels, resources) as one lowercase hex string in a saved state,
/// rather than one JSON number per byte: `#[serde(with = "crate::state::hex_bytes")]`.
pub(crate) mod hex_bytes {
    use serde::de::Error;
    use serde::{Deserialize, Deserializer, Serializer};

    const DIGITS: &[u8; 16] = b"0123456789abcdef";

    /// Writes `bytes` as hex.
    pub(crate) fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        let mut text = String::with_capacity(2 * bytes.len());
        for &b in bytes {
            text.push(char::from(DIGITS[usize::from(b >> 4)]));
            text.push(char::from(DIGITS[usize::from(b & 0xf)]));
        }
        serializer.serialize_str(&text)
    }

    /// Reads hex back into bytes; odd lengths and non-hex digits are errors.
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        let digit = |c: u8| {
            (c as char)
                .to_digit(16)
                .map(|d| d as u8)
                .ok_or_else(|| D::Error::custom(format!("{:?} is not a hex digit", c as char)))
        };
        if text.len() % 2 != 0 {
            return Err(D::Error::custom("hex byte string of odd length"));
        }
        text.as_bytes()
            .chunks_exact(2)
            .map(|pair| Ok(digit(pair[0])? << 4 | digit(pair[1])?))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Blob {
        #[serde(with = "super::hex_bytes")]
        bytes: Vec<u8>,
    }

    #[test]
    fn hex_bytes_round_trip_and_reject_garbage() {
        let blob = Blob {
            bytes: vec![0x00, 0x7f, 0xa5, 0xff],
        };
        let value = serde_json::to_value(&blob).unwrap();
        assert_eq!(value, serde_json::json!({ "bytes": "007fa5ff" }));
        assert_eq!(serde_json::from_value::<Blob>(value).unwrap(), blob);
        for bad in ["abc", "0g", "é0"] {
            let value = serde_json::json!({ "bytes": bad });
            assert!(serde_json::from_value::<Blob>(value).is_err(), "{bad}");
        }
    }
}
