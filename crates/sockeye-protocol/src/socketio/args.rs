//! [`Args`]: event and ack arguments, kept raw until a handler asks for a type.

use std::cell::RefCell;
use std::fmt;
use std::marker::PhantomData;
use std::ops::Range;

use bytes::Bytes;
use serde::Serialize;
use serde::de::value::SeqAccessDeserializer;
use serde::de::{DeserializeOwned, Deserializer, IgnoredAny, SeqAccess, Visitor};

use super::binser::serialize_with_attachments;
use super::value::Value;
use super::{DecodeError, EncodeError};

/// How the raw bytes of [`Args`] are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Form {
    /// A JSON array; binary parts are placeholders referring to `attachments`.
    Json,
    /// A msgpack array; binary parts are inline `bin` values.
    #[cfg(feature = "msgpack")]
    MsgPack,
}

/// The arguments of an event or an ack: opaque and raw until asked for.
///
/// Decoding a packet only finds where the arguments start and end; nothing is deserialised until
/// [`Args::deserialize`], [`Args::first`] or [`Args::nth`] is called. The bytes are a slice of the
/// received message, and cloning `Args` copies no payload, so an event can be forwarded or
/// broadcast as received.
///
/// For the JSON parser the raw form is JSON text with binary parts replaced by
/// `{"_placeholder":true,"num":N}` and carried in [`Args::attachments`]; for the msgpack parser it
/// is msgpack with binary inline. Arguments built with [`Args::from_value`] or [`ArgsBuilder`] are
/// JSON and are converted when a packet is encoded with the msgpack parser.
#[derive(Clone)]
pub struct Args {
    pub(crate) form: Form,
    /// A whole array: JSON text or msgpack.
    pub(crate) raw: Bytes,
    /// Where the argument elements are inside `raw` (after the event name, if any).
    pub(crate) elems: Range<usize>,
    /// Whether the first element of `raw` is the event name rather than an argument.
    pub(crate) skip_first: bool,
    pub(crate) len: usize,
    pub(crate) attachments: Vec<Bytes>,
}

impl Args {
    /// No arguments.
    pub fn empty() -> Args {
        Args {
            form: Form::Json,
            raw: Bytes::from_static(b"[]"),
            elems: 1..1,
            skip_first: false,
            len: 0,
            attachments: Vec::new(),
        }
    }

    /// One argument: `value` serialised to JSON. Binary parts (anything serialised with
    /// `serialize_bytes`: `bytes::Bytes`, `serde_bytes`) become attachments with placeholders.
    pub fn from_value<T: Serialize + ?Sized>(value: &T) -> Result<Args, EncodeError> {
        let mut builder = ArgsBuilder::new();
        builder.push(value)?;
        Ok(builder.build())
    }

    /// Several arguments at once: each item of `values` becomes one argument.
    pub fn from_values<I>(values: I) -> Result<Args, EncodeError>
    where
        I: IntoIterator,
        I::Item: Serialize,
    {
        let mut builder = ArgsBuilder::new();
        for value in values {
            builder.push(&value)?;
        }
        Ok(builder.build())
    }

    /// A builder that pushes arguments one by one, each of its own type.
    pub fn builder() -> ArgsBuilder {
        ArgsBuilder::new()
    }

    /// Arguments from a JSON array's text (for example received from another server) and the
    /// attachments its placeholders refer to. The array is checked: it must be valid JSON no
    /// deeper than `max_depth`, and every placeholder must match an attachment.
    pub fn from_json_array(
        array: Bytes,
        attachments: Vec<Bytes>,
        max_depth: usize,
    ) -> Result<Args, DecodeError> {
        let (_, args) = super::json::parse_array(array, false, attachments, max_depth)?;
        Ok(args)
    }

    /// The number of arguments.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if there are no arguments.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes these arguments hold: their encoded elements plus their attachments (what
    /// keeping them costs, for callers that bound how many they keep).
    pub fn byte_len(&self) -> usize {
        let attachments: usize = self.attachments.iter().map(Bytes::len).sum();
        (self.elems.end - self.elems.start).saturating_add(attachments)
    }

    /// The binary attachments, in placeholder order (always empty for msgpack arguments, whose
    /// binary stays inline).
    pub fn attachments(&self) -> &[Bytes] {
        &self.attachments
    }

    /// True if the arguments hold binary data (a JSON packet then travels as BINARY_EVENT /
    /// BINARY_ACK with attachments).
    pub fn has_binary(&self) -> bool {
        !self.attachments.is_empty()
    }

    /// For JSON arguments, the raw text of the argument elements joined by commas, without the
    /// surrounding brackets and without the event name (`1,{"a":2}` for `["ev",1,{"a":2}]`);
    /// `None` for msgpack arguments. Placeholders appear as they were received.
    pub fn raw_json(&self) -> Option<&[u8]> {
        match self.form {
            Form::Json => self.raw.get(self.elems.clone()),
            #[cfg(feature = "msgpack")]
            Form::MsgPack => None,
        }
    }

    /// For JSON arguments, the whole argument array as JSON text (`[1,{"a":2}]`); shares memory
    /// with the received message when no event name has to be cut out. `None` for msgpack.
    pub fn json_array(&self) -> Option<Bytes> {
        let elems = self.raw_json()?;
        if !self.skip_first {
            return Some(self.raw.clone());
        }
        let mut out = Vec::with_capacity(elems.len() + 2);
        out.push(b'[');
        out.extend_from_slice(elems);
        out.push(b']');
        Some(Bytes::from(out))
    }

    /// The whole argument list as `T`: a tuple, a `Vec`, a struct read as a sequence, or a
    /// `serde_json::Value` array. Placeholders are replaced by their attachment for fields that
    /// want bytes (`bytes::Bytes`, `serde_bytes::ByteBuf`, `Vec<u8>`). Arguments beyond what `T`
    /// reads are ignored, like JavaScript ignores extra arguments.
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<T, DecodeError> {
        self.read(Pick::Whole)
    }

    /// The first argument as `T`; an error if there is none.
    pub fn first<T: DeserializeOwned>(&self) -> Result<T, DecodeError> {
        self.nth(0)
    }

    /// The argument at `index` as `T`; an error if there is none.
    pub fn nth<T: DeserializeOwned>(&self, index: usize) -> Result<T, DecodeError> {
        if index >= self.len {
            return Err(DecodeError::Args(format!(
                "no argument at index {index}: there are {}",
                self.len
            )));
        }
        self.read(Pick::Nth(index))
    }

    fn read<T: DeserializeOwned>(&self, pick: Pick) -> Result<T, DecodeError> {
        let visitor = ArgsVisitor::<T> {
            skip: usize::from(self.skip_first),
            pick,
            marker: PhantomData,
        };
        let args_err = |e: &dyn fmt::Display| DecodeError::Args(e.to_string());
        match self.form {
            Form::Json if self.attachments.is_empty() => {
                let mut de = serde_json::Deserializer::from_slice(&self.raw);
                de.deserialize_seq(visitor).map_err(|e| args_err(&e))
            }
            Form::Json => {
                let mut tree: Value =
                    serde_json::from_slice(&self.raw).map_err(|e| args_err(&e))?;
                tree.fill_placeholders(&self.attachments)?;
                tree.deserialize_seq(visitor).map_err(|e| args_err(&e))
            }
            #[cfg(feature = "msgpack")]
            Form::MsgPack => {
                let mut de = rmp_serde::Deserializer::from_read_ref(&self.raw[..]);
                de.deserialize_seq(visitor).map_err(|e| args_err(&e))
            }
        }
    }

    /// These arguments with `value` appended as one more, last argument (binary parts become
    /// attachments after the existing ones). The existing elements are copied as they are
    /// (no re-parse) for JSON arguments; msgpack arguments are converted to the JSON form
    /// first, which the msgpack parser converts back when the packet is encoded.
    ///
    /// The server uses it to stamp the connection-state-recovery offset on a broadcast.
    pub fn appended<T: Serialize + ?Sized>(&self, value: &T) -> Result<Args, EncodeError> {
        let Some(elems) = self.raw_json() else {
            return self.appended_slow(value);
        };
        let mut buf = Vec::with_capacity(elems.len() + 32);
        buf.push(b'[');
        buf.extend_from_slice(elems);
        if self.len > 0 {
            buf.push(b',');
        }
        let attachments = RefCell::new(self.attachments.clone());
        let mut ser = serde_json::Serializer::new(&mut buf);
        serialize_with_attachments(value, &mut ser, &attachments)
            .map_err(|e| EncodeError::Serialize(e.to_string()))?;
        buf.push(b']');
        let end = buf.len() - 1;
        Ok(Args {
            form: Form::Json,
            raw: Bytes::from(buf),
            elems: 1..end,
            skip_first: false,
            len: self.len + 1,
            attachments: attachments.into_inner(),
        })
    }

    #[cfg(feature = "msgpack")]
    fn appended_slow<T: Serialize + ?Sized>(&self, value: &T) -> Result<Args, EncodeError> {
        let mut builder = ArgsBuilder::new();
        for item in self.to_values()? {
            builder.push(&item)?;
        }
        builder.push(value)?;
        Ok(builder.build())
    }

    #[cfg(not(feature = "msgpack"))]
    fn appended_slow<T: Serialize + ?Sized>(&self, value: &T) -> Result<Args, EncodeError> {
        // Without msgpack every `Args` is JSON, so `raw_json` never fails; stay total anyway.
        let _ = value;
        Err(EncodeError::Serialize(
            "arguments are not JSON and cannot be extended".into(),
        ))
    }

    /// The arguments as a list of value trees, binary restored (used to convert between parsers).
    #[cfg(feature = "msgpack")]
    pub(crate) fn to_values(&self) -> Result<Vec<Value>, EncodeError> {
        let conv = |e: &dyn fmt::Display| EncodeError::Transcode(e.to_string());
        let tree: Value = match self.form {
            Form::Json => {
                let mut tree: Value = serde_json::from_slice(&self.raw).map_err(|e| conv(&e))?;
                tree.fill_placeholders(&self.attachments)
                    .map_err(|e| conv(&e))?;
                tree
            }
            Form::MsgPack => rmp_serde::from_slice(&self.raw).map_err(|e| conv(&e))?,
        };
        let mut items = tree.into_seq();
        if self.skip_first && !items.is_empty() {
            items.remove(0);
        }
        Ok(items)
    }
}

impl Default for Args {
    fn default() -> Self {
        Args::empty()
    }
}

impl PartialEq for Args {
    /// Two argument lists are equal when they hold the same encoded elements and attachments,
    /// wherever they came from (a received event or a builder).
    fn eq(&self, other: &Self) -> bool {
        self.form == other.form
            && self.len == other.len
            && self.raw.get(self.elems.clone()) == other.raw.get(other.elems.clone())
            && self.attachments == other.attachments
    }
}

impl fmt::Debug for Args {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("Args");
        s.field("len", &self.len);
        match self.raw_json() {
            Some(json) => s.field("json", &String::from_utf8_lossy(json)),
            None => s.field("msgpack_bytes", &self.elems.len()),
        };
        s.field("attachments", &self.attachments.len()).finish()
    }
}

/// Builds [`Args`] from arguments of different types.
///
/// ```
/// use sockeye_protocol::socketio::Args;
/// let mut b = Args::builder();
/// b.push(&"hello")?.push(&42)?.push_binary(bytes::Bytes::from_static(b"\x01\x02"));
/// let args = b.build();
/// assert_eq!(args.len(), 3);
/// assert_eq!(args.raw_json(), Some(&br#""hello",42,{"_placeholder":true,"num":0}"#[..]));
/// # Ok::<(), sockeye_protocol::socketio::EncodeError>(())
/// ```
#[derive(Debug)]
pub struct ArgsBuilder {
    buf: Vec<u8>,
    len: usize,
    attachments: RefCell<Vec<Bytes>>,
}

impl Default for ArgsBuilder {
    fn default() -> Self {
        ArgsBuilder::new()
    }
}

impl ArgsBuilder {
    /// An empty builder.
    pub fn new() -> ArgsBuilder {
        let mut buf = Vec::with_capacity(64);
        buf.push(b'[');
        ArgsBuilder {
            buf,
            len: 0,
            attachments: RefCell::new(Vec::new()),
        }
    }

    fn separator(&mut self) {
        if self.len > 0 {
            self.buf.push(b',');
        }
    }

    /// Appends one argument serialised to JSON; its binary parts become attachments.
    pub fn push<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<&mut Self, EncodeError> {
        let mark = self.buf.len();
        self.separator();
        let attachments_before = self.attachments.borrow().len();
        let mut ser = serde_json::Serializer::new(&mut self.buf);
        if let Err(e) = serialize_with_attachments(value, &mut ser, &self.attachments) {
            // Leave the builder as it was before this argument.
            self.buf.truncate(mark);
            self.attachments.borrow_mut().truncate(attachments_before);
            return Err(EncodeError::Serialize(e.to_string()));
        }
        self.len += 1;
        Ok(self)
    }

    /// Appends one binary argument without copying it.
    pub fn push_binary(&mut self, data: Bytes) -> &mut Self {
        self.separator();
        let num = {
            let mut attachments = self.attachments.borrow_mut();
            attachments.push(data);
            attachments.len() - 1
        };
        self.buf
            .extend_from_slice(format!(r#"{{"_placeholder":true,"num":{num}}}"#).as_bytes());
        self.len += 1;
        self
    }

    /// The finished arguments.
    pub fn build(mut self) -> Args {
        self.buf.push(b']');
        let end = self.buf.len() - 1;
        Args {
            form: Form::Json,
            raw: Bytes::from(self.buf),
            elems: 1..end,
            skip_first: false,
            len: self.len,
            attachments: self.attachments.into_inner(),
        }
    }
}

#[derive(Clone, Copy)]
enum Pick {
    Whole,
    Nth(usize),
}

/// Reads an argument array: skips the event name, hands the rest (or one element) to `T`, and
/// drains what `T` left so trailing arguments never fail the read.
struct ArgsVisitor<T> {
    skip: usize,
    pick: Pick,
    marker: PhantomData<T>,
}

impl<'de, T: DeserializeOwned> Visitor<'de> for ArgsVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of arguments")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<T, A::Error> {
        let skip = match self.pick {
            Pick::Whole => self.skip,
            Pick::Nth(n) => self.skip.saturating_add(n),
        };
        for _ in 0..skip {
            if seq.next_element::<IgnoredAny>()?.is_none() {
                break;
            }
        }
        let value = match self.pick {
            Pick::Whole => T::deserialize(SeqAccessDeserializer::new(&mut seq))?,
            Pick::Nth(_) => seq
                .next_element::<T>()?
                .ok_or_else(|| serde::de::Error::custom("missing argument"))?,
        };
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(value)
    }
}
