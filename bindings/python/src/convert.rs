//! JSON between Rust and Python: frame text straight into dicts and lists (every event and
//! every answer), Python values into serde values, and typed parsing of command arguments with
//! the path of the offending field.

use std::fmt;
use std::sync::{Mutex, TryLockError};

use letta_app_server_client::RawFrame;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde::de::{DeserializeOwned, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Serialize, de};
use serde_json::{Map, Number, Value};

/// Parses JSON text into Python objects (`dict`, `list`, `str`, `int`, `float`, `bool`,
/// `None`) without an intermediate tree, reusing strings from `strings` when given. Text that is
/// not JSON comes back as the `str` itself, as the Rust client delivers it: nothing the server
/// sends is dropped.
pub fn text_to_py<'py>(py: Python<'py>, text: &str, strings: Option<&mut Strings>) -> Bound<'py, PyAny> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let seed = PySeed { py, strings };
    match seed
        .deserialize(&mut deserializer)
        .and_then(|value| deserializer.end().map(|()| value))
    {
        Ok(value) => value,
        Err(_) => PyString::new(py, text).into_any(),
    }
}

/// Python strings made recently, for reuse: frames repeat the same keys and many of the same
/// short values (frame and delta types, runtime and run ids), and reusing them saves an
/// allocation and a UTF-8 check each. Direct-mapped: a string takes the slot its hash picks,
/// replacing what was there, so the cache stays small and keeps what recurs. The bytes live in
/// the slot itself, so a lookup reads one slot and compares a few words.
///
/// One cache (80 KiB) serves every stream of the process: see [`with_strings`].
pub struct Strings(Box<[Slot]>);

/// Slots of the cache, and the longest string it keeps (in bytes).
const SLOTS: usize = 1024;
const MAX_CACHED_LENGTH: usize = 48;

/// The process's string cache, made on first use.
static STRINGS: Mutex<Option<Strings>> = Mutex::new(None);

/// Runs `convert` with the process's string cache. Callers hold the GIL, so the cache is only
/// ever contended by a conversion on the same thread (a finaliser run by the garbage collector
/// in the middle of one): that one gets `None` and makes its strings afresh.
pub fn with_strings<R>(convert: impl FnOnce(Option<&mut Strings>) -> R) -> R {
    match STRINGS.try_lock() {
        Ok(mut cache) => convert(Some(cache.get_or_insert_with(Strings::default))),
        Err(TryLockError::Poisoned(poisoned)) => {
            convert(Some(poisoned.into_inner().get_or_insert_with(Strings::default)))
        }
        Err(TryLockError::WouldBlock) => convert(None),
    }
}

struct Slot {
    /// The string's length and its first and last bytes.
    key: Key,
    /// All of its bytes, for strings longer than the key covers.
    bytes: [u8; MAX_CACHED_LENGTH],
    string: Option<Py<PyString>>,
}

impl Default for Strings {
    fn default() -> Self {
        let empty = || Slot {
            key: Key::default(),
            bytes: [0; MAX_CACHED_LENGTH],
            string: None,
        };
        Self((0..SLOTS).map(|_| empty()).collect())
    }
}

impl Strings {
    fn get<'py>(&mut self, py: Python<'py>, text: &str) -> Bound<'py, PyString> {
        let bytes = text.as_bytes();
        if bytes.len() > MAX_CACHED_LENGTH {
            return PyString::new(py, text);
        }
        let key = Key::of(bytes);
        let slot = &mut self.0[key.slot()];
        if let Some(string) = &slot.string
            && slot.key == key
            && (bytes.len() <= 16 || slot.bytes[8..bytes.len() - 8] == bytes[8..bytes.len() - 8])
        {
            return string.bind(py).clone();
        }
        let made = PyString::new(py, text);
        slot.key = key;
        slot.bytes[..bytes.len()].copy_from_slice(bytes);
        slot.string = Some(made.clone().unbind());
        made
    }
}

/// What identifies a short string cheaply: its length and its first and last eight bytes,
/// which for strings of up to 16 bytes are all of it (shorter than 8: all of its bytes, packed
/// into `head`).
#[derive(Clone, Copy, Default, PartialEq, Eq)]
struct Key {
    head: u64,
    tail: u64,
    length: usize,
}

impl Key {
    fn of(bytes: &[u8]) -> Self {
        let word = |chunk: &[u8; 8]| u64::from_le_bytes(*chunk);
        let half = |chunk: &[u8; 4]| u64::from(u32::from_le_bytes(*chunk));
        let pack = |a: u8, b: u8, c: u8| u64::from(a) | u64::from(b) << 8 | u64::from(c) << 16;
        // Read as words, not copied into a buffer; overlapping halves cover every byte.
        let (head, tail) = match (bytes.first_chunk(), bytes.last_chunk()) {
            (Some(first), Some(last)) => (word(first), word(last)),
            _ => match (bytes.first_chunk(), bytes.last_chunk()) {
                (Some(first), Some(last)) => (half(first) | half(last) << 32, 0),
                _ => match *bytes {
                    [a, b, c] => (pack(a, b, c), 0),
                    [a, b] => (pack(a, b, b), 0),
                    [a] => (pack(a, a, a), 0),
                    _ => (0, 0),
                },
            },
        };
        Self {
            head,
            tail,
            length: bytes.len(),
        }
    }

    /// The slot of the string (a collision only costs a miss).
    fn slot(self) -> usize {
        let mixed = (self.head ^ self.tail.rotate_left(29) ^ self.length as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        (mixed >> 54) as usize % SLOTS
    }
}

/// Builds one Python value from the deserializer.
struct PySeed<'a, 'py> {
    py: Python<'py>,
    strings: Option<&'a mut Strings>,
}

impl<'py> PySeed<'_, 'py> {
    fn string(&mut self, text: &str) -> Bound<'py, PyString> {
        match self.strings.as_deref_mut() {
            Some(strings) => strings.get(self.py, text),
            None => PyString::new(self.py, text),
        }
    }

    /// A seed for a value inside this one, sharing its cache.
    fn inner(&mut self) -> PySeed<'_, 'py> {
        PySeed {
            py: self.py,
            strings: self.strings.as_deref_mut(),
        }
    }
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

    fn visit_str<E>(mut self, v: &str) -> Result<Self::Value, E> {
        Ok(self.string(v).into_any())
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(self.py.None().into_bound(self.py))
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element_seed(self.inner())? {
            items.push(item);
        }
        Ok(PyList::new(self.py, items).map_err(de::Error::custom)?.into_any())
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Self::Value, A::Error> {
        let dict = PyDict::new(self.py);
        while let Some(key) = map.next_key::<KeyStr<'de>>()? {
            let key = self.string(key.as_str());
            let value = map.next_value_seed(self.inner())?;
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
    from_value(&py_to_value(value)?, what)
}

/// A Python value as JSON, unchanged (fields this version does not know are kept), once it has
/// been checked against the generated Rust type `T` of `what` as [`from_py`] checks it.
pub fn checked<T: DeserializeOwned>(value: &Bound<'_, PyAny>, what: &str) -> PyResult<Value> {
    check::<T>(py_to_value(value)?, what)
}

/// `json`, unchanged, once it has been checked against the generated Rust type `T` of `what`.
pub fn check<T: DeserializeOwned>(json: Value, what: &str) -> PyResult<Value> {
    from_value::<T>(&json, what)?;
    Ok(json)
}

fn from_value<T: DeserializeOwned>(json: &Value, what: &str) -> PyResult<T> {
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

/// JSON text on its way to Python as plain objects ([`text_to_py`]); converted when the
/// awaitable that returns it completes.
pub struct Json(String);

impl Json {
    /// Serialises a generated frame type.
    pub fn of<T: Serialize>(value: &T) -> PyResult<Self> {
        serde_json::to_string(value)
            .map(Json)
            .map_err(|e| PyValueError::new_err(format!("a frame could not be converted: {e}")))
    }

    /// A frame exactly as received, fields this version does not know included.
    pub fn received(frame: &RawFrame) -> Self {
        Json(frame.text().to_owned())
    }
}

impl<'py> IntoPyObject<'py> for Json {
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Self::Output> {
        Ok(with_strings(|strings| text_to_py(py, &self.0, strings)))
    }
}
