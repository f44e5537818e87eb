//! One model of the schema bundle for the TypeScript and Python generators.
//!
//! The bundle is read once here: every `$ref` is resolved (a reference to a missing definition
//! is an error), every keyword is checked (one the generators do not know is an error, so that a
//! schema change can never be dropped silently), and each definition is classified once as an
//! object, a tagged union or an alias. Both emitters walk this model, so the Node and Python
//! SDKs describe the same types.
//!
//! A `oneOf` whose branches are all objects (directly or through a `$ref`) sharing one required
//! string `const` property (`type`, `message_type`, `kind`, …) is a tagged union; a branch that
//! repeats a named definition (each frame of `ClientFrame` and `ServerFrame` is also a
//! definition of its own) refers to it.

use letta_app_server_protocol::schema::{FRAME_NAME_SUFFIXES, pascal_case};
use serde_json::{Map, Value};

/// Keywords the generators read, or that do not affect a generated type.
const KNOWN_KEYWORDS: &[&str] = &[
    letta_app_server_protocol::schema::OPEN_KEYWORD,
    "$ref",
    "$schema",
    "additionalProperties",
    "allOf",
    "anyOf",
    "const",
    "definitions",
    "description",
    "enum",
    "format",
    "items",
    "maxItems",
    "minItems",
    "minimum",
    "oneOf",
    "properties",
    "required",
    "title",
    "type",
];

/// The schema bundle, read.
#[derive(Debug)]
pub struct Model {
    /// The root union (`title` names it), if the bundle has one.
    pub root: Option<Root>,
    /// Every definition, in the bundle's order.
    pub definitions: Vec<Definition>,
}

/// The bundle's root: a union of its members.
#[derive(Debug)]
pub struct Root {
    /// Its name.
    pub title: String,
    /// Its description.
    pub description: Option<String>,
    /// Its members.
    pub members: Vec<Type>,
}

/// A named type.
#[derive(Debug)]
pub struct Definition {
    /// Its name.
    pub name: String,
    /// Its description.
    pub description: Option<String>,
    /// What it is.
    pub body: Body,
}

/// What a definition is.
#[derive(Debug)]
pub enum Body {
    /// A union of objects told apart by one `const` property.
    Tagged(Tagged),
    /// An object with declared properties.
    Object(Object),
    /// Any other type.
    Alias(Type),
}

/// A `oneOf` of objects told apart by one `const` property.
#[derive(Debug)]
pub struct Tagged {
    /// The property that tells the branches apart.
    pub tag: String,
    /// The branches, in order.
    pub branches: Vec<Branch>,
}

/// One branch of a [`Tagged`] union.
#[derive(Debug)]
pub struct Branch {
    /// Its tag value.
    pub value: String,
    /// The named definition it repeats or refers to, if any.
    pub named: Option<String>,
    /// Its description.
    pub description: Option<String>,
    /// Its properties.
    pub object: Object,
}

/// An object's declared properties.
#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    /// The properties, in declaration order.
    pub properties: Vec<Property>,
    /// Whether properties besides these are allowed and kept (`"additionalProperties": true`:
    /// a Letta object with the fields the protocol relies on typed).
    pub open: bool,
}

/// One property of an [`Object`].
#[derive(Debug, Clone, PartialEq)]
pub struct Property {
    /// Its name.
    pub name: String,
    /// Its description.
    pub description: Option<String>,
    /// Whether it must be present.
    pub required: bool,
    /// Its type.
    pub ty: Type,
}

/// A type.
#[derive(Debug, Clone, PartialEq)]
pub enum Type {
    /// Anything (the schema `true`).
    Any,
    /// Nothing (the schema `false`).
    Never,
    /// A named definition.
    Ref(String),
    /// One JSON value (a string, number, boolean or null).
    Const(Value),
    /// One of these JSON values.
    Enum(Vec<Value>),
    /// A `oneOf` or `anyOf` of these members.
    Union(Vec<Type>),
    /// A schema `type`: one kind, or several (`["string", "null"]`).
    Kinds(Vec<Kind>),
}

/// One kind of a schema `type`.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// A string.
    String,
    /// An integer.
    Integer,
    /// Any number.
    Number,
    /// A boolean.
    Boolean,
    /// `null`.
    Null,
    /// A list of anything (no `items`).
    List,
    /// A list of one type.
    ListOf(Box<Type>),
    /// A fixed-length list of these types.
    Tuple(Vec<Type>),
    /// An object without declared properties: a map to anything (`None`) or to one type.
    Map(Option<Box<Type>>),
    /// An object with declared properties, unnamed.
    Object(Object),
}

type Result<T> = std::result::Result<T, String>;

impl Model {
    /// Reads `bundle` (the draft-07 bundle of `schema/frames.schema.json`).
    pub fn read(bundle: &Value) -> Result<Self> {
        let definitions = bundle
            .get("definitions")
            .and_then(Value::as_object)
            .ok_or("the schema bundle has no `definitions`")?;
        let reader = Reader { definitions };
        let root = match bundle.get("title").and_then(Value::as_str) {
            Some(title) => {
                reader.check_keywords(bundle, "#")?;
                let members = reader.union(bundle, "#")?.ok_or("the schema root is not a union")?;
                Some(Root {
                    title: title.to_owned(),
                    description: description(bundle),
                    members,
                })
            }
            None => None,
        };
        let definitions = definitions
            .iter()
            .map(|(name, schema)| reader.definition(name, schema))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { root, definitions })
    }

    /// Whether a definition of this name exists.
    pub fn has_definition(&self, name: &str) -> bool {
        self.definitions.iter().any(|definition| definition.name == name)
    }
}

struct Reader<'a> {
    definitions: &'a Map<String, Value>,
}

impl Reader<'_> {
    fn definition(&self, name: &str, schema: &Value) -> Result<Definition> {
        let path = format!("#/definitions/{name}");
        self.check_keywords(schema, &path)?;
        let body = if let Some(tagged) = self.tagged(schema, &path)? {
            Body::Tagged(tagged)
        } else if is_object(schema) && schema.get("properties").is_some() {
            Body::Object(self.object(schema, &path)?)
        } else {
            Body::Alias(self.type_of(schema, &path)?)
        };
        Ok(Definition {
            name: name.to_owned(),
            description: description(schema),
            body,
        })
    }

    /// The schema a `$ref` names (and its name), or `schema` itself.
    fn resolve<'s>(&'s self, schema: &'s Value, path: &str) -> Result<(&'s Value, Option<String>)> {
        match schema.get("$ref") {
            Some(reference) => {
                let name = reference_name(reference, path)?;
                let target = self
                    .definitions
                    .get(&name)
                    .ok_or_else(|| format!("{path}: `$ref` to a missing definition `{name}`"))?;
                Ok((target, Some(name)))
            }
            None => Ok((schema, None)),
        }
    }

    /// `schema` as a tagged union, if it is one.
    fn tagged(&self, schema: &Value, path: &str) -> Result<Option<Tagged>> {
        let Some(branches) = schema.get("oneOf").and_then(Value::as_array) else {
            return Ok(None);
        };
        let mut resolved = Vec::new();
        for (index, branch) in branches.iter().enumerate() {
            let branch_path = format!("{path}/oneOf/{index}");
            let (body, named) = self.resolve(branch, &branch_path)?;
            if !is_object(body) {
                return Ok(None);
            }
            resolved.push((body, named, branch_path));
        }
        let Some((first, _, _)) = resolved.first() else {
            return Ok(None);
        };
        let candidates = first.get("properties").and_then(Value::as_object).into_iter().flatten();
        let tag = candidates
            .map(|(name, _)| name)
            .find(|name| resolved.iter().all(|(body, _, _)| tag_value(body, name).is_some()));
        let Some(tag) = tag else {
            return Ok(None);
        };
        let mut out = Vec::new();
        for (body, named, branch_path) in resolved {
            self.check_keywords(body, &branch_path)?;
            let value = tag_value(body, tag).unwrap_or_default();
            let named = named.or_else(|| {
                let plain = pascal_case(&value);
                let suffixed = FRAME_NAME_SUFFIXES.map(|suffix| format!("{plain}{suffix}"));
                std::iter::once(plain)
                    .chain(suffixed)
                    .find(|candidate| self.definitions.get(candidate) == Some(body))
            });
            out.push(Branch {
                object: self.object(body, &format!("{path}/{value}"))?,
                description: description(body),
                named,
                value,
            });
        }
        Ok(Some(Tagged {
            tag: tag.clone(),
            branches: out,
        }))
    }

    /// The members of a `oneOf` or `anyOf`, if `schema` is one.
    fn union(&self, schema: &Value, path: &str) -> Result<Option<Vec<Type>>> {
        let Some((keyword, members)) = ["oneOf", "anyOf"]
            .iter()
            .find_map(|keyword| schema.get(*keyword).and_then(Value::as_array).map(|m| (*keyword, m)))
        else {
            return Ok(None);
        };
        if members.is_empty() {
            return Err(format!("{path}: an empty `{keyword}`"));
        }
        members
            .iter()
            .enumerate()
            .map(|(index, member)| self.type_of(member, &format!("{path}/{keyword}/{index}")))
            .collect::<Result<Vec<_>>>()
            .map(Some)
    }

    fn type_of(&self, schema: &Value, path: &str) -> Result<Type> {
        // The boolean schemas: anything, nothing.
        match schema {
            Value::Bool(true) => return Ok(Type::Any),
            Value::Bool(false) => return Ok(Type::Never),
            _ => self.check_keywords(schema, path)?,
        }
        if schema.get("$ref").is_some() {
            let (_, name) = self.resolve(schema, path)?;
            return name.map(Type::Ref).ok_or_else(|| format!("{path}: unreadable `$ref`"));
        }
        if let Some(all) = schema.get("allOf") {
            return match all.as_array().map(Vec::as_slice) {
                Some([only]) => self.type_of(only, &format!("{path}/allOf/0")),
                _ => Err(format!("{path}: `allOf` is supported with exactly one member")),
            };
        }
        if let Some(members) = self.union(schema, path)? {
            return Ok(Type::Union(members));
        }
        if let Some(value) = schema.get("const") {
            return Ok(Type::Const(scalar(value, path)?));
        }
        if let Some(values) = schema.get("enum") {
            let values = values
                .as_array()
                .ok_or_else(|| format!("{path}: `enum` is not a list"))?;
            let values = values
                .iter()
                .map(|value| scalar(value, path))
                .collect::<Result<Vec<_>>>()?;
            return Ok(Type::Enum(values));
        }
        let kinds: Vec<&str> = match schema.get("type") {
            Some(Value::String(one)) => vec![one.as_str()],
            Some(Value::Array(many)) => many.iter().filter_map(Value::as_str).collect(),
            Some(other) => return Err(format!("{path}: unreadable `type` {other}")),
            None => {
                return Err(format!(
                    "{path}: a schema without `type`, `$ref`, a union, `const` or `enum`"
                ));
            }
        };
        if schema.get("properties").is_some() && !kinds.contains(&"object") {
            return Err(format!("{path}: `properties` on a schema that is not an object"));
        }
        let mut out = Vec::new();
        for kind in kinds {
            out.push(match kind {
                "string" => Kind::String,
                "integer" => Kind::Integer,
                "number" => Kind::Number,
                "boolean" => Kind::Boolean,
                "null" => Kind::Null,
                "array" => self.array(schema, path)?,
                "object" => match schema.get("properties") {
                    Some(_) => Kind::Object(self.object(schema, path)?),
                    None => match schema.get("additionalProperties") {
                        None | Some(Value::Bool(_)) => Kind::Map(None),
                        Some(values) => Kind::Map(Some(Box::new(
                            self.type_of(values, &format!("{path}/additionalProperties"))?,
                        ))),
                    },
                },
                other => return Err(format!("{path}: unsupported `type` `{other}`")),
            });
        }
        Ok(Type::Kinds(out))
    }

    fn array(&self, schema: &Value, path: &str) -> Result<Kind> {
        let items_path = format!("{path}/items");
        match schema.get("items") {
            Some(Value::Array(tuple)) => {
                let length = Some(tuple.len() as u64);
                if schema.get("minItems").and_then(Value::as_u64) != length
                    || schema.get("maxItems").and_then(Value::as_u64) != length
                {
                    return Err(format!(
                        "{path}: a tuple needs `minItems` and `maxItems` equal to its length"
                    ));
                }
                let members = tuple
                    .iter()
                    .enumerate()
                    .map(|(index, item)| self.type_of(item, &format!("{items_path}/{index}")))
                    .collect::<Result<Vec<_>>>()?;
                Ok(Kind::Tuple(members))
            }
            Some(items) => Ok(Kind::ListOf(Box::new(self.type_of(items, &items_path)?))),
            None => Ok(Kind::List),
        }
    }

    /// An object's declared properties.
    fn object(&self, schema: &Value, path: &str) -> Result<Object> {
        let properties = schema
            .get("properties")
            .and_then(Value::as_object)
            .ok_or_else(|| format!("{path}: `properties` is not an object"))?;
        let required: Vec<&str> = schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        if let Some(missing) = required.iter().find(|name| !properties.contains_key(**name)) {
            return Err(format!("{path}: required property `{missing}` is not declared"));
        }
        let properties = properties
            .iter()
            .map(|(name, property)| {
                Ok(Property {
                    name: name.clone(),
                    description: description(property),
                    required: required.contains(&name.as_str()),
                    ty: self.type_of(property, &format!("{path}/properties/{name}"))?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Object {
            properties,
            open: schema.get("additionalProperties") == Some(&Value::Bool(true)),
        })
    }

    fn check_keywords(&self, schema: &Value, path: &str) -> Result<()> {
        let object = schema
            .as_object()
            .ok_or_else(|| format!("{path}: a schema must be an object, not {schema}"))?;
        match object.keys().find(|key| !KNOWN_KEYWORDS.contains(&key.as_str())) {
            Some(unknown) => Err(format!(
                "{path}: the code generators do not support the keyword `{unknown}`"
            )),
            None => Ok(()),
        }
    }
}

fn description(schema: &Value) -> Option<String> {
    schema.get("description").and_then(Value::as_str).map(str::to_owned)
}

fn is_object(schema: &Value) -> bool {
    schema.get("type").and_then(Value::as_str) == Some("object")
}

/// The string `const` of a required property, which makes it a tag.
fn tag_value(body: &Value, property: &str) -> Option<String> {
    let required = body
        .get("required")
        .and_then(Value::as_array)
        .is_some_and(|required| required.iter().any(|name| name == property));
    let value = body.get("properties")?.get(property)?.get("const")?.as_str()?;
    required.then(|| value.to_owned())
}

fn reference_name(reference: &Value, path: &str) -> Result<String> {
    reference
        .as_str()
        .and_then(|reference| reference.strip_prefix("#/definitions/"))
        .map(str::to_owned)
        .ok_or_else(|| format!("{path}: only `#/definitions/…` references are supported, not {reference}"))
}

/// A `const` or `enum` value, which must be a string, number, boolean or null.
fn scalar(value: &Value, path: &str) -> Result<Value> {
    match value {
        Value::String(_) | Value::Number(_) | Value::Bool(_) | Value::Null => Ok(value.clone()),
        other => Err(format!("{path}: no literal type for {other}")),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn read(definitions: Value) -> Result<Model> {
        Model::read(&json!({ "definitions": definitions }))
    }

    #[test]
    fn what_the_generators_cannot_express_is_an_error_naming_the_place() {
        let error = read(json!({"Name": {"type": "string", "pattern": "^a"}})).unwrap_err();
        assert_eq!(
            error,
            "#/definitions/Name: the code generators do not support the keyword `pattern`"
        );
        let error =
            read(json!({"A": {"type": "object", "properties": {"b": {"$ref": "#/definitions/Gone"}}}})).unwrap_err();
        assert_eq!(
            error,
            "#/definitions/A/properties/b: `$ref` to a missing definition `Gone`"
        );
        let error = read(json!({"A": {"description": "no type"}})).unwrap_err();
        assert!(error.contains("a schema without `type`"), "{error}");
        // Branches of a tagged union are checked too.
        let error = read(json!({"U": {"oneOf": [{"type": "object", "format": "x", "pattern": "y",
            "properties": {"kind": {"type": "string", "const": "a"}}, "required": ["kind"]}]}}))
        .unwrap_err();
        assert_eq!(
            error,
            "#/definitions/U/oneOf/0: the code generators do not support the keyword `pattern`"
        );
    }

    #[test]
    fn a_union_of_objects_with_a_required_string_const_is_tagged() {
        let model = read(json!({
            "U": {"oneOf": [{"$ref": "#/definitions/A"},
                {"type": "object", "properties": {"kind": {"type": "string", "const": "b"}}, "required": ["kind"]}]},
            "A": {"type": "object", "properties": {"kind": {"type": "string", "const": "a"}}, "required": ["kind"]},
            "NotTagged": {"oneOf": [{"type": "object", "properties": {"kind": {"const": "a"}}}]},
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        let Body::Tagged(tagged) = &model.definitions[0].body else {
            panic!("{:?}", model.definitions[0]);
        };
        assert_eq!(tagged.tag, "kind");
        let branches: Vec<_> = tagged
            .branches
            .iter()
            .map(|b| (b.value.as_str(), b.named.as_deref()))
            .collect();
        assert_eq!(branches, [("a", Some("A")), ("b", None)]);
        assert!(matches!(model.definitions[1].body, Body::Object(_)));
        assert!(
            matches!(&model.definitions[2].body, Body::Alias(Type::Union(members)) if members.len() == 1),
            "an optional const is no tag"
        );
    }
}
