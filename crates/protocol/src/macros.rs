//! Declarative helpers shared by the frame modules.

/// Declares an *open* string enum: the listed values, plus `Other(String)` that keeps any value
/// this version does not know (used for informational values such as stop reasons and loop
/// statuses, so that a newer server does not break an older client). The JSON Schema lists only
/// the known values.
macro_rules! open_enum {
    (
        $(#[doc = $doc:literal])*
        pub enum $name:ident {
            $( $(#[doc = $vdoc:literal])* $variant:ident = $wire:literal, )+
        }
    ) => {
        $(#[doc = $doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[doc = $vdoc])* $variant, )+
            /// A value this version of the protocol does not know, kept verbatim.
            Other(String),
        }

        impl $name {
            /// Every value this version knows, in declaration order.
            pub const KNOWN: &'static [&'static str] = &[$($wire),+];

            /// The wire spelling of this value.
            pub fn as_str(&self) -> &str {
                match self {
                    $( Self::$variant => $wire, )+
                    Self::Other(other) => other,
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                match value {
                    $( $wire => Self::$variant, )+
                    other => Self::Other(other.to_owned()),
                }
            }
        }

        impl From<String> for $name {
            fn from(value: String) -> Self {
                match value.as_str() {
                    $( $wire => Self::$variant, )+
                    _ => Self::Other(value),
                }
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                String::deserialize(deserializer).map(Self::from)
            }
        }

        impl ::schemars::JsonSchema for $name {
            fn schema_name() -> ::std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }

            fn json_schema(_: &mut ::schemars::SchemaGenerator) -> ::schemars::Schema {
                let description = [$($doc.trim()),*].join("\n");
                ::schemars::json_schema!({
                    "description": description,
                    "type": "string",
                    "enum": Self::KNOWN,
                    $crate::schema::OPEN_KEYWORD: true,
                })
            }
        }
    };
}

/// Declares a union of frame bodies tagged by a field (`message_type`, `kind`, …), with a
/// dispatching `Deserialize` that keeps the path of a failing field.
///
/// `open` unions add `Unknown(serde_json::Value)`, which keeps a body with an unknown tag
/// verbatim (informational unions); `closed` unions reject unknown tags (control unions).
/// `common field: Type;` lines generate accessors for a field every body has.
macro_rules! tagged_union {
    (
        $(#[$meta:meta])*
        pub enum $name:ident: $kind:ident tag $tag_fn:ident = $tag:literal {
            $( $(#[$vmeta:meta])* $variant:ident($ty:ty) = $wire:literal, )+
        }
        $( common $field:ident: $fty:ty; )*
    ) => {
        tagged_union!(@enum $kind $(#[$meta])* $name $tag { $( $(#[$vmeta])* $variant($ty) = $wire, )+ });

        impl $name {
            /// Every tag value this version knows.
            pub const TAGS: &'static [&'static str] = &[$($wire),+];

            #[doc = concat!("The body's `", $tag, "`.")]
            pub fn $tag_fn(&self) -> &str {
                match self {
                    $( Self::$variant(_) => $wire, )+
                    #[allow(unreachable_patterns)]
                    other => tagged_union!(@unknown_tag $kind other $tag),
                }
            }

            tagged_union!(@accessors [$($variant)+] $( $field: $fty; )*);

            fn from_value(value: ::serde_json::Value) -> Result<Self, $crate::parse::PathError> {
                let tagged = $crate::parse::split_tag(value, $tag)
                    .map_err(|error| $crate::parse::PathError { path: None, reason: error.reason })?;
                match tagged.tag.as_str() {
                    $( $wire => $crate::parse::union_body(tagged).map(Self::$variant), )+
                    _ => tagged_union!(@unknown $kind tagged $tag),
                }
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                use ::serde::de::Error as _;
                let value = ::serde_json::Value::deserialize(deserializer)?;
                Self::from_value(value).map_err(D::Error::custom)
            }
        }
    };

    (@enum open $(#[$meta:meta])* $name:ident $tag:literal { $( $(#[$vmeta:meta])* $variant:ident($ty:ty) = $wire:literal, )+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, ::serde::Serialize, ::schemars::JsonSchema)]
        #[serde(tag = $tag)]
        #[schemars(extend("x-open" = true))]
        pub enum $name {
            $( $(#[$vmeta])* #[serde(rename = $wire)] $variant($ty), )+
            /// A body with a tag this version does not know, kept verbatim.
            #[serde(untagged)]
            #[schemars(skip)]
            Unknown(::serde_json::Value),
        }
    };
    (@enum closed $(#[$meta:meta])* $name:ident $tag:literal { $( $(#[$vmeta:meta])* $variant:ident($ty:ty) = $wire:literal, )+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, ::serde::Serialize, ::schemars::JsonSchema)]
        #[serde(tag = $tag)]
        pub enum $name {
            $( $(#[$vmeta])* #[serde(rename = $wire)] $variant($ty), )+
        }
    };
    (@accessors $variants:tt $( $field:ident: $fty:ty; )*) => {
        $( tagged_union!(@accessor $variants $field $fty); )*
    };
    (@accessor [$($variant:ident)+] $field:ident $fty:ty) => {
        #[doc = concat!("The `", stringify!($field), "` of the body (`None` for an unknown body).")]
        #[allow(unreachable_patterns)]
        pub fn $field(&self) -> Option<&$fty> {
            match self {
                $( Self::$variant(body) => Some(&body.$field), )+
                _ => None,
            }
        }
    };
    (@unknown_tag open $other:ident $tag:literal) => {
        match $other {
            Self::Unknown(value) => value.get($tag).and_then(::serde_json::Value::as_str).unwrap_or_default(),
            _ => "",
        }
    };
    (@unknown_tag closed $other:ident $tag:literal) => {{
        let _ = $other;
        ""
    }};
    (@unknown open $tagged:ident $tag:literal) => { Ok(Self::Unknown($tagged.value)) };
    (@unknown closed $tagged:ident $tag:literal) => { Err($crate::parse::unknown_union_tag(&$tagged, $tag, Self::TAGS)) };
}

/// Declares the response of a command answered with one object or `null` (the shape Letta
/// Code's declarations give `agent_retrieve_response`, `conversation_create_response`, …):
/// `request_id`, `success`, the object (always present, `null` on failure) and an optional
/// `error`. `schema` names the schema function of the object field
/// (`"nullable::<T>"`: always present, may be `null`), which an attribute cannot compose.
macro_rules! object_response {
    ($( $(#[$meta:meta])* $name:ident { $field:ident: $object:ty, schema $schema:literal } )+) => {$(
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Default, ::serde::Serialize, ::serde::Deserialize, ::schemars::JsonSchema)]
        pub struct $name {
            /// Echo of the request's id.
            pub request_id: String,
            /// Whether the command succeeded.
            pub success: bool,
            #[doc = concat!("The ", stringify!($field), "; `null` on failure.")]
            #[schemars(required, schema_with = $schema)]
            pub $field: Option<$object>,
            /// Why it failed.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub error: Option<String>,
        }

    )+};
}

/// Implements [`crate::Refuse`] for commands whose response declines them with nothing but the
/// echoed `request_id`, `success: false` and the `error`, plus the fields listed in braces after
/// the response, copied from the command (`Cmd => CmdResponse { channel_id }`); every other
/// field at its empty value (`[]`, `null`, `false`).
macro_rules! refused_with_empty_fields {
    ($( $command:ty => $response:ident $({ $($echo:ident),+ })? ),+ $(,)?) => {$(
        impl $crate::Refuse for $command {
            // Some responses have no field besides the echoed ones.
            #[allow(clippy::needless_update)]
            fn refuse(&self, error: String) -> Option<$response> {
                Some($response {
                    request_id: self.request_id.clone(),
                    success: false,
                    error: Some(error),
                    $($( $echo: self.$echo.clone(), )+)?
                    ..Default::default()
                })
            }
        }
    )+};
}
