//! Fast construction of Ruby objects from Rust data with raw C API calls.
//!
//! A whole build runs inside ONE `rb_protect` (`build`), rather than one per call as the
//! safe wrappers do; it is the hot path of every poll. Rules kept here:
//! - Every function is `unsafe`: the caller holds the GVL and is inside `build`.
//! - A Ruby exception (only `NoMemoryError` is possible for these calls) jumps out of
//!   the build to `rb_protect`. Code inside a build therefore keeps no Rust value that
//!   needs dropping (no `String`, `Vec` or lock guard); it only borrows.
//! - A new object is reachable from the machine stack (Ruby's GC scans it
//!   conservatively) until it is stored in a Hash or Array that is.
//! - Objects kept beyond one call (`permanent`) are frozen and registered with
//!   `rb_gc_register_mark_object`, so the GC always marks them and compaction never
//!   moves them.

use std::os::raw::{c_char, c_long};
use std::sync::OnceLock;

use magnus::rb_sys::{protect, FromRawValue};
use magnus::{Error, Value};
use rb_sys::VALUE;
use serde_json::{Number, Value as Json};
use uuid::Uuid;

/// `true`, `false` and `nil`.
pub const QTRUE: VALUE = rb_sys::Qtrue as VALUE;
pub const QFALSE: VALUE = rb_sys::Qfalse as VALUE;
pub const QNIL: VALUE = rb_sys::Qnil as VALUE;

/// Runs `f` (which builds objects with this module) under one `rb_protect`.
pub fn build(f: impl FnOnce() -> VALUE) -> Result<Value, Error> {
    // SAFETY: `protect` returns a VALUE produced by `f` on this Ruby thread.
    protect(f).map(|raw| unsafe { Value::from_raw(raw) })
}

struct Utf8(*mut rb_sys::rb_encoding);
// SAFETY: the UTF-8 encoding is a static table of the VM, valid for the whole process.
unsafe impl Send for Utf8 {}
unsafe impl Sync for Utf8 {}
static UTF8: OnceLock<Utf8> = OnceLock::new();

unsafe fn utf8() -> *mut rb_sys::rb_encoding {
    UTF8.get_or_init(|| Utf8(unsafe { rb_sys::rb_utf8_encoding() })).0
}

/// A new UTF-8 String.
pub unsafe fn string(s: &str) -> VALUE {
    unsafe { rb_sys::rb_utf8_str_new(s.as_ptr() as *const c_char, s.len() as c_long) }
}

/// The frozen, deduplicated String for `s` (what Hash keys become anyway).
pub unsafe fn interned(s: &str) -> VALUE {
    unsafe { rb_sys::rb_enc_interned_str(s.as_ptr() as *const c_char, s.len() as c_long, utf8()) }
}

/// Freezes `value` and keeps it alive (and unmoved) for the life of the process.
pub unsafe fn permanent(value: VALUE) -> VALUE {
    unsafe {
        rb_sys::rb_obj_freeze(value);
        rb_sys::rb_gc_register_mark_object(value);
    }
    value
}

pub unsafe fn hash() -> VALUE {
    unsafe { rb_sys::rb_hash_new() }
}

pub unsafe fn aset(hash: VALUE, key: VALUE, value: VALUE) {
    unsafe {
        rb_sys::rb_hash_aset(hash, key, value);
    }
}

pub unsafe fn array(capacity: usize) -> VALUE {
    unsafe { rb_sys::rb_ary_new_capa(capacity as c_long) }
}

pub unsafe fn push(array: VALUE, value: VALUE) {
    unsafe {
        rb_sys::rb_ary_push(array, value);
    }
}

pub unsafe fn int(n: i64) -> VALUE {
    unsafe { rb_sys::rb_ll2inum(n) }
}

pub unsafe fn uint(n: u64) -> VALUE {
    unsafe { rb_sys::rb_ull2inum(n) }
}

pub unsafe fn float(n: f64) -> VALUE {
    unsafe { rb_sys::rb_float_new(n) }
}

pub fn boolean(b: bool) -> VALUE {
    if b {
        QTRUE
    } else {
        QFALSE
    }
}

/// A lowercase hyphenated UUID String.
pub unsafe fn uuid(u: &Uuid) -> VALUE {
    let mut buf = Uuid::encode_buffer();
    unsafe { string(u.hyphenated().encode_lower(&mut buf)) }
}

pub unsafe fn opt_string(s: Option<&str>) -> VALUE {
    match s {
        Some(s) => unsafe { string(s) },
        None => QNIL,
    }
}

/// `TaskerCore::Types::IndifferentHash` (a Hash subclass answering String and Symbol
/// keys alike), when the Ruby side defined it before the extension loaded.
struct IndifferentClass(VALUE);
// SAFETY: a class registered with the GC for the life of the process.
unsafe impl Send for IndifferentClass {}
unsafe impl Sync for IndifferentClass {}
static INDIFFERENT: OnceLock<IndifferentClass> = OnceLock::new();

/// Remembers the handler-facing Hash class; called once from the extension's init.
pub fn set_indifferent_class(class: VALUE) {
    if INDIFFERENT.get().is_none() {
        // SAFETY: a live class VALUE on the init thread; registered so it is never freed or moved.
        unsafe { rb_sys::rb_gc_register_mark_object(class) };
        let _ = INDIFFERENT.set(IndifferentClass(class));
    }
}

/// A JSON value as plain Ruby objects: Hashes (with interned String keys), Arrays,
/// Strings, Integers (any size), Floats, true, false, nil.
pub unsafe fn json(value: &Json) -> VALUE {
    unsafe { json_as(value, QNIL) }
}

/// [`json`] for what handlers read (task context, inputs, step results): every Hash is
/// a `TaskerCore::Types::IndifferentHash` (a plain Hash when that class is not defined).
pub unsafe fn json_indifferent(value: &Json) -> VALUE {
    let class = INDIFFERENT.get().map_or(QNIL, |c| c.0);
    unsafe { json_as(value, class) }
}

/// `class`: the class of the Hashes made (`QNIL` for plain Hashes).
unsafe fn json_as(value: &Json, class: VALUE) -> VALUE {
    match value {
        Json::Null => QNIL,
        Json::Bool(b) => boolean(*b),
        Json::Number(n) => unsafe { number(n) },
        Json::String(s) => unsafe { string(s) },
        Json::Array(items) => {
            let out = unsafe { array(items.len()) };
            for item in items {
                unsafe { push(out, json_as(item, class)) };
            }
            out
        }
        Json::Object(map) => {
            // `rb_obj_alloc` runs the class's allocator (Hash's own) without calling Ruby's
            // `initialize`: the same object `rb_hash_new` makes, with another class.
            let out = if class == QNIL { unsafe { hash() } } else { unsafe { rb_sys::rb_obj_alloc(class) } };
            for (k, v) in map {
                unsafe { aset(out, interned(k), json_as(v, class)) };
            }
            out
        }
    }
}

/// A JSON number (kept as its decimal text): an Integer of any size, or a Float.
unsafe fn number(n: &Number) -> VALUE {
    let text = n.as_str();
    let is_float = text.bytes().any(|b| matches!(b, b'.' | b'e' | b'E'));
    if is_float {
        return unsafe { float(text.parse::<f64>().unwrap_or(f64::NAN)) };
    }
    if let Ok(i) = text.parse::<i64>() {
        return unsafe { int(i) };
    }
    // Beyond 64 bits: Ruby parses the digits into a Bignum.
    unsafe { rb_sys::rb_str_to_inum(string(text), 10, 0) }
}
