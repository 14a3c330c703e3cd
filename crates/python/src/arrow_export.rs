//! Results to pyarrow without copies: the Arrow C Data Interface.
//!
//! A result's record batch becomes a struct array whose children are its columns, described by
//! two C structs (`ArrowSchema`, `ArrowArray`) that point straight at the batch's own buffers.
//! Each travels in a PyCapsule named as the Arrow PyCapsule interface names them
//! (`arrow_schema`, `arrow_array`), and pyarrow imports them (`RecordBatch._import_from_c_capsule`),
//! taking over their release callbacks: the buffers stay alive, shared, until pyarrow lets the
//! last one go. Nothing is copied except a validity bitmap whose offset differs from its array's.
//!
//! (arrow-rs has this as its `ffi` feature; turning that on would rebuild every crate above
//! arrow in the workspace, so the few dozen lines live here.)

use std::ffi::{c_char, c_void, CString};

use datafusion::arrow::array::{Array, ArrayData, BooleanBufferBuilder, StructArray};
use datafusion::arrow::buffer::Buffer;
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;

/// `struct ArrowSchema` of the C Data Interface.
#[repr(C)]
pub struct ArrowSchema {
    format: *const c_char,
    name: *const c_char,
    metadata: *const c_char,
    flags: i64,
    n_children: i64,
    children: *mut *mut ArrowSchema,
    dictionary: *mut ArrowSchema,
    release: Option<unsafe extern "C" fn(*mut ArrowSchema)>,
    private_data: *mut c_void,
}

/// `struct ArrowArray` of the C Data Interface.
#[repr(C)]
pub struct ArrowArray {
    length: i64,
    null_count: i64,
    offset: i64,
    n_buffers: i64,
    n_children: i64,
    buffers: *mut *const c_void,
    children: *mut *mut ArrowArray,
    dictionary: *mut ArrowArray,
    release: Option<unsafe extern "C" fn(*mut ArrowArray)>,
    private_data: *mut c_void,
}

// The structs only hand pointers to their consumer; the data behind them is immutable and
// reference-counted (Arrow buffers), so moving them between threads is safe.
unsafe impl Send for ArrowSchema {}
unsafe impl Send for ArrowArray {}

/// A capsule that pyarrow did not import still owns its data: release it.
impl Drop for ArrowSchema {
    fn drop(&mut self) {
        if let Some(release) = self.release {
            unsafe { release(self) }
        }
    }
}

impl Drop for ArrowArray {
    fn drop(&mut self) {
        if let Some(release) = self.release {
            unsafe { release(self) }
        }
    }
}

const NULLABLE: i64 = 2;

struct SchemaPrivate {
    _format: CString,
    _name: CString,
    children: Vec<*mut ArrowSchema>,
}

unsafe extern "C" fn release_schema(s: *mut ArrowSchema) {
    let s = unsafe { &mut *s };
    let private = unsafe { Box::from_raw(s.private_data as *mut SchemaPrivate) };
    for child in private.children {
        // Dropping the box runs the child's own release.
        drop(unsafe { Box::from_raw(child) });
    }
    s.release = None;
}

struct ArrayPrivate {
    /// Holds the buffers the pointers point into.
    _data: ArrayData,
    _extra: Vec<Buffer>,
    buffers: Vec<*const c_void>,
    children: Vec<*mut ArrowArray>,
}

unsafe extern "C" fn release_array(a: *mut ArrowArray) {
    let a = unsafe { &mut *a };
    let private = unsafe { Box::from_raw(a.private_data as *mut ArrayPrivate) };
    for child in &private.children {
        drop(unsafe { Box::from_raw(*child) });
    }
    drop(private);
    a.release = None;
}

/// The C Data Interface's format string of a type; None for types not exported.
fn format(t: &DataType) -> Option<String> {
    let unit = |u: &TimeUnit| match u {
        TimeUnit::Second => 's',
        TimeUnit::Millisecond => 'm',
        TimeUnit::Microsecond => 'u',
        TimeUnit::Nanosecond => 'n',
    };
    Some(match t {
        DataType::Null => "n".into(),
        DataType::Boolean => "b".into(),
        DataType::Int8 => "c".into(),
        DataType::UInt8 => "C".into(),
        DataType::Int16 => "s".into(),
        DataType::UInt16 => "S".into(),
        DataType::Int32 => "i".into(),
        DataType::UInt32 => "I".into(),
        DataType::Int64 => "l".into(),
        DataType::UInt64 => "L".into(),
        DataType::Float16 => "e".into(),
        DataType::Float32 => "f".into(),
        DataType::Float64 => "g".into(),
        DataType::Binary => "z".into(),
        DataType::LargeBinary => "Z".into(),
        DataType::Utf8 => "u".into(),
        DataType::LargeUtf8 => "U".into(),
        DataType::Utf8View => "vu".into(),
        DataType::BinaryView => "vz".into(),
        DataType::FixedSizeBinary(n) => format!("w:{n}"),
        DataType::Decimal128(p, s) => format!("d:{p},{s}"),
        DataType::Date32 => "tdD".into(),
        DataType::Date64 => "tdm".into(),
        DataType::Time32(u) | DataType::Time64(u) => format!("tt{}", unit(u)),
        DataType::Timestamp(u, tz) => format!("ts{}:{}", unit(u), tz.as_deref().unwrap_or("")),
        DataType::Duration(u) => format!("tD{}", unit(u)),
        DataType::List(_) => "+l".into(),
        DataType::LargeList(_) => "+L".into(),
        DataType::FixedSizeList(_, n) => format!("+w:{n}"),
        DataType::Struct(_) => "+s".into(),
        _ => return None,
    })
}

fn child_fields(t: &DataType) -> Vec<Field> {
    match t {
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => vec![f.as_ref().clone()],
        DataType::Struct(fs) => fs.iter().map(|f| f.as_ref().clone()).collect(),
        _ => vec![],
    }
}

fn export_schema(name: &str, t: &DataType, nullable: bool) -> Result<ArrowSchema, String> {
    let format = CString::new(format(t).ok_or_else(|| format!("no Arrow export for {t}"))?).expect("no NUL");
    let name = CString::new(name.replace('\0', "")).expect("no NUL");
    let children = child_fields(t)
        .iter()
        .map(|f| export_schema(f.name(), f.data_type(), f.is_nullable()).map(|s| Box::into_raw(Box::new(s))))
        .collect::<Result<Vec<_>, _>>()?;
    let mut private = Box::new(SchemaPrivate { _format: format, _name: name, children });
    Ok(ArrowSchema {
        format: private._format.as_ptr(),
        name: private._name.as_ptr(),
        metadata: std::ptr::null(),
        flags: if nullable { NULLABLE } else { 0 },
        n_children: private.children.len() as i64,
        children: private.children.as_mut_ptr(),
        dictionary: std::ptr::null_mut(),
        release: Some(release_schema),
        private_data: Box::into_raw(private) as *mut c_void,
    })
}

fn export_array(data: ArrayData) -> ArrowArray {
    let mut extra = Vec::new();
    let mut buffers: Vec<*const c_void> = Vec::new();
    if !matches!(data.data_type(), DataType::Null) {
        // The validity bitmap, read from the array's offset like its other buffers.
        let validity = data.nulls().map(|n| {
            if n.offset() == data.offset() {
                n.buffer().as_ptr()
            } else {
                let mut b = BooleanBufferBuilder::new(data.offset() + n.len());
                b.append_n(data.offset(), false);
                b.append_buffer(n.inner());
                extra.push(b.finish().into_inner());
                extra.last().expect("pushed").as_ptr()
            }
        });
        buffers.push(validity.map_or(std::ptr::null(), |p| p as *const c_void));
        buffers.extend(data.buffers().iter().map(|b| b.as_ptr() as *const c_void));
        if matches!(data.data_type(), DataType::Utf8View | DataType::BinaryView) {
            // View arrays end with the sizes of their variadic data buffers.
            let sizes: Vec<i64> = data.buffers()[1..].iter().map(|b| b.len() as i64).collect();
            extra.push(Buffer::from_vec(sizes));
            buffers.push(extra.last().expect("pushed").as_ptr() as *const c_void);
        }
    }
    let children: Vec<*mut ArrowArray> = data.child_data().iter().map(|c| Box::into_raw(Box::new(export_array(c.clone())))).collect();
    let (length, null_count, offset) = (data.len() as i64, data.null_count() as i64, data.offset() as i64);
    let mut private = Box::new(ArrayPrivate { _data: data, _extra: extra, buffers, children });
    ArrowArray {
        length,
        null_count,
        offset,
        n_buffers: private.buffers.len() as i64,
        n_children: private.children.len() as i64,
        buffers: private.buffers.as_mut_ptr(),
        children: private.children.as_mut_ptr(),
        dictionary: std::ptr::null_mut(),
        release: Some(release_array),
        private_data: Box::into_raw(private) as *mut c_void,
    }
}

/// A schema as a struct type whose children are its fields (what pyarrow imports as a schema).
pub fn schema(s: &Schema) -> Result<ArrowSchema, String> {
    export_schema("", &DataType::Struct(s.fields().clone()), false)
}

/// A batch as a struct array of its columns, and its schema.
pub fn batch(b: &RecordBatch) -> Result<(ArrowSchema, ArrowArray), String> {
    let schema = schema(&b.schema())?;
    let array = StructArray::from(b.clone()).into_data();
    Ok((schema, export_array(array)))
}
