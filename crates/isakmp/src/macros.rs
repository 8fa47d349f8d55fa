//! `enum_with_unknown!`: protocol numbers as closed enums that still carry values this crate
//! has no name for (smoltcp's `enum_with_unknown!`). Exhaustive matching flags unhandled
//! values in the engine, and an `Unknown(n)` survives a parse/emit round trip unchanged.

/// Declares `pub enum Name { Variant, …, Unknown(repr) }` with `From<repr>` both ways.
///
/// `Unknown(n)` must only ever hold numbers without a named variant; `From<repr>` guarantees
/// that for parsed values.
macro_rules! enum_with_unknown {
    (
        $(#[$enum_meta:meta])*
        pub enum $name:ident($repr:ty) {
            $( $(#[$variant_meta:meta])* $variant:ident = $value:expr ),+ $(,)?
        }
    ) => {
        $(#[$enum_meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $( $(#[$variant_meta])* $variant, )+
            /// A number this crate has no name for; kept so it can be reported and re-emitted.
            Unknown($repr),
        }

        impl From<$repr> for $name {
            fn from(value: $repr) -> Self {
                match value {
                    $( $value => Self::$variant, )+
                    other => Self::Unknown(other),
                }
            }
        }

        impl From<$name> for $repr {
            fn from(value: $name) -> Self {
                match value {
                    $( $name::$variant => $value, )+
                    $name::Unknown(other) => other,
                }
            }
        }
    };
}

pub(crate) use enum_with_unknown;
