//! JSON between Rust and Python: frame text straight into dicts and lists (the hot path of
//! every event stream), serde values both ways, and typed parsing of command arguments with
//! the path of the offending field.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde::de::{DeserializeOwned, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Serialize, de};
use serde_json::{Map, Number, Value};

/// Parses JSON text into Python objects (`dict`, `list`, `str`, `int`, `float`, `bool`,
/// `None`) without an intermediate tree. Text that is not JSON comes back as the `str` itself,
/// as the Rust client delivers it: nothing the server sends is dropped.
pub fn text_to_py<'py>(py: Python<'py>, text: &str, keys: &mut Keys) -> Bound<'py, PyAny> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let seed = PySeed { py, keys };
    match seed
        .deserialize(&mut deserializer)
        .and_then(|value| deserializer.end().map(|()| value))
    {
        Ok(value) => value,
        Err(_) => PyString::new(py, text).into_any(),
    }
}

/// Object keys already made into Python strings: frames repeat the same few dozen keys, and
/// reusing them saves an allocation and a UTF-8 check per key.
#[derive(Default)]
pub struct Keys(HashMap<Box<str>, Py<PyString>, BuildHasherDefault<Fnv>>);

/// FNV-1a: for short keys much cheaper than the default SipHash, and the keys come from the
/// server the client chose to connect to.
#[derive(Default)]
struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut hash = if self.0 == 0 { 0xcbf2_9ce4_8422_2325 } else { self.0 };
        for byte in bytes {
            hash = (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = hash;
    }
}

/// Keys remembered at most, and the longest key remembered (in bytes).
const MAX_KEYS: usize = 2048;
const MAX_KEY_LENGTH: usize = 48;

impl Keys {
    fn get<'py>(&mut self, py: Python<'py>, key: &str) -> Bound<'py, PyString> {
        if let Some(known) = self.0.get(key) {
            return known.bind(py).clone();
        }
        let made = PyString::new(py, key);
        if self.0.len() < MAX_KEYS && key.len() <= MAX_KEY_LENGTH {
            self.0.insert(key.into(), made.clone().unbind());
        }
        made
    }
}

/// Builds one Python value from the deserializer.
struct PySeed<'a, 'py> {
    py: Python<'py>,
    keys: &'a mut Keys,
}

impl<'de, 'py> DeserializeSeed<'de> for PySeed<'_, 'py> {
    type Value = Bound<'py, PyAny>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de, 'py> Visitor<'de> for PySeed<'_, 'py> {
    type Value = Bound<'py, PyAny>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(PyBool::new(self.py, v).to_owned().into_any())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(v.into_pyobject(self.py).map_err(E::custom)?.into_any())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(v.into_pyobject(self.py).map_err(E::custom)?.into_any())
    }

    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(PyFloat::new(self.py, v).into_any())
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(PyString::new(self.py, v).into_any())
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(self.py.None().into_bound(self.py))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element_seed(PySeed {
            py: self.py,
            keys: &mut *self.keys,
        })? {
            items.push(item);
        }
        Ok(PyList::new(self.py, items).map_err(de::Error::custom)?.into_any())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let dict = PyDict::new(self.py);
        while let Some(key) = map.next_key::<KeyStr<'de>>()? {
            let key = self.keys.get(self.py, key.as_str());
            let value = map.next_value_seed(PySeed {
                py: self.py,
                keys: &mut *self.keys,
            })?;
            dict.set_item(key, value).map_err(de::Error::custom)?;
        }
        Ok(dict.into_any())
    }
}

/// An object key, borrowed from the text when it has no escapes.
enum KeyStr<'de> {
    Borrowed(&'de str),
    Owned(String),
}

impl KeyStr<'_> {
    fn as_str(&self) -> &str {
        match self {
            KeyStr::Borrowed(key) => key,
            KeyStr::Owned(key) => key,
        }
    }
}

impl<'de> de::Deserialize<'de> for KeyStr<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Key;
        impl<'de> Visitor<'de> for Key {
            type Value = KeyStr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(KeyStr::Borrowed(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(KeyStr::Owned(v.to_owned()))
            }
        }
        deserializer.deserialize_str(Key)
    }
}

/// A serde value as Python objects.
pub fn value_to_py<'py>(py: Python<'py>, value: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => u.into_pyobject(py)?.into_any(),
            (None, Some(i)) => i.into_pyobject(py)?.into_any(),
            (None, None) => PyFloat::new(py, n.as_f64().unwrap_or(f64::NAN)).into_any(),
        },
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Array(items) => PyList::new(
            py,
            items
                .iter()
                .map(|item| value_to_py(py, item))
                .collect::<PyResult<Vec<_>>>()?,
        )?
        .into_any(),
        Value::Object(fields) => {
            let dict = PyDict::new(py);
            for (key, value) in fields {
                dict.set_item(key, value_to_py(py, value)?)?;
            }
            dict.into_any()
        }
    })
}

/// A Python value (`dict` with `str` keys, `list`, `tuple`, `str`, `int`, `float`, `bool`,
/// `None`) as a serde value. Anything else is a `TypeError` naming where it was.
pub fn py_to_value(value: &Bound<'_, PyAny>) -> PyResult<Value> {
    to_value_at(value, &mut String::new())
}

fn to_value_at(value: &Bound<'_, PyAny>, path: &mut String) -> PyResult<Value> {
    if value.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(b) = value.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if let Ok(int) = value.cast::<PyInt>() {
        if let Ok(i) = int.extract::<i64>() {
            return Ok(Value::from(i));
        }
        if let Ok(u) = int.extract::<u64>() {
            return Ok(Value::from(u));
        }
        return Err(PyValueError::new_err(format!(
            "{}: the integer is too large for JSON",
            at(path)
        )));
    }
    if let Ok(float) = value.cast::<PyFloat>() {
        return Number::from_f64(float.value())
            .map(Value::Number)
            .ok_or_else(|| PyValueError::new_err(format!("{}: {} is not a JSON number", at(path), float.value())));
    }
    if let Ok(s) = value.cast::<PyString>() {
        return Ok(Value::String(s.to_str()?.to_owned()));
    }
    if let Ok(dict) = value.cast::<PyDict>() {
        let mut fields = Map::new();
        for (key, item) in dict.iter() {
            let Ok(key) = key.cast::<PyString>() else {
                return Err(PyTypeError::new_err(format!(
                    "{}: object keys must be str, not {}",
                    at(path),
                    key.get_type().name()?
                )));
            };
            let key = key.to_str()?.to_owned();
            let length = path.len();
            push_field(path, &key);
            let item = to_value_at(&item, path)?;
            path.truncate(length);
            fields.insert(key, item);
        }
        return Ok(Value::Object(fields));
    }
    let items: Option<Vec<Bound<'_, PyAny>>> = if let Ok(list) = value.cast::<PyList>() {
        Some(list.iter().collect())
    } else if let Ok(tuple) = value.cast::<PyTuple>() {
        Some(tuple.iter().collect())
    } else {
        None
    };
    match items {
        Some(items) => items
            .iter()
            .enumerate()
            .map(|(index, item)| {
                let length = path.len();
                path.push_str(&format!("[{index}]"));
                let item = to_value_at(item, path);
                path.truncate(length);
                item
            })
            .collect::<PyResult<Vec<_>>>()
            .map(Value::Array),
        None => Err(PyTypeError::new_err(format!(
            "{}: a {} cannot be sent as JSON",
            at(path),
            value.get_type().name()?
        ))),
    }
}

fn push_field(path: &mut String, key: &str) {
    if !path.is_empty() {
        path.push('.');
    }
    path.push_str(key);
}

fn at(path: &str) -> String {
    if path.is_empty() {
        "the value".to_owned()
    } else {
        format!("`{path}`")
    }
}

/// Parses a Python value into the generated Rust type of `what` (a frame or argument name);
/// a mismatch is a `ValueError` naming the field.
pub fn from_py<T: DeserializeOwned>(value: &Bound<'_, PyAny>, what: &str) -> PyResult<T> {
    let json = py_to_value(value)?;
    serde_path_to_error::deserialize(json).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        if path == "." {
            PyValueError::new_err(format!("invalid {what}: {inner}"))
        } else {
            PyValueError::new_err(format!("invalid {what}: field `{path}`: {inner}"))
        }
    })
}

/// A Rust value on its way to Python as plain JSON objects; converted when the awaitable
/// that returns it completes.
pub struct Json(pub Value);

impl Json {
    /// Serialises a generated frame type.
    pub fn of<T: Serialize>(value: &T) -> PyResult<Self> {
        serde_json::to_value(value)
            .map(Json)
            .map_err(|e| PyValueError::new_err(format!("a frame could not be converted: {e}")))
    }
}

impl<'py> IntoPyObject<'py> for Json {
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Self::Output> {
        value_to_py(py, &self.0)
    }
}
