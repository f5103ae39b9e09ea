//! Errors of the protobuf ⇄ JSON conversion. Request-side errors (bad body) are meant to become
//! 400 BadRequest / 415 Status bodies, so their messages name the offending field.

/// Why a body could not be decoded or an object could not be encoded.
#[derive(Debug, thiserror::Error)]
pub enum ProtoError {
    /// The body does not start with the `k8s\0` magic of apimachinery's protobuf serializer.
    #[error(
        "provided data does not appear to be a protobuf message, expected prefix [107 56 115 0]"
    )]
    MissingMagic,
    /// The body is just the magic prefix.
    #[error("empty body")]
    EmptyBody,
    /// The envelope's typeMeta, or a JSON object to encode, lacks `kind` or `apiVersion`.
    #[error("Object '{field}' is missing in {context}")]
    MissingTypeField {
        /// `Kind` or `apiVersion`.
        field: &'static str,
        /// Where it was looked for.
        context: &'static str,
    },
    /// No protobuf message is known for this group-version-kind (custom resources, Table, ...).
    #[error("no protobuf serialization is known for apiVersion {api_version:?}, kind {kind:?}")]
    UnsupportedKind {
        /// The object's apiVersion.
        api_version: String,
        /// The object's kind.
        kind: String,
    },
    /// The protobuf bytes are malformed or do not match the message's schema.
    #[error("invalid protobuf for {message}{}: {reason}", at(path))]
    Malformed {
        /// Full name of the message being decoded.
        message: String,
        /// JSON path of the field inside the top-level object, empty for the object itself.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A JSON value does not fit the protobuf field it maps to.
    #[error("invalid value for {kind}{}: {reason}", at(path))]
    InvalidValue {
        /// The kind being encoded.
        kind: String,
        /// JSON path of the field, e.g. `spec.template.spec.containers[0].ports[1].containerPort`.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A length-prefixed watch frame is truncated or its length does not match.
    #[error("invalid protobuf watch frame: {0}")]
    Frame(String),
    /// The committed descriptor or hints file is inconsistent (a bug in this crate).
    #[error("protobuf schema: {0}")]
    Schema(String),
}

fn at(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!(" at {path}")
    }
}

impl ProtoError {
    /// Prefixes the JSON path with a field name while the error bubbles up.
    pub(crate) fn within(mut self, field: &str) -> Self {
        if let ProtoError::Malformed { path, .. } | ProtoError::InvalidValue { path, .. } =
            &mut self
        {
            *path = join(field, path);
        }
        self
    }

    /// Prefixes the JSON path with a list index while the error bubbles up.
    pub(crate) fn within_index(self, index: usize) -> Self {
        self.within(&format!("[{index}]"))
    }

    /// Fills in the kind of an [`ProtoError::InvalidValue`] at the top level.
    pub(crate) fn for_kind(mut self, name: &str) -> Self {
        if let ProtoError::InvalidValue { kind, .. } = &mut self
            && kind.is_empty()
        {
            *kind = name.to_owned();
        }
        self
    }

    pub(crate) fn invalid(reason: impl Into<String>) -> Self {
        ProtoError::InvalidValue {
            kind: String::new(),
            path: String::new(),
            reason: reason.into(),
        }
    }

    pub(crate) fn malformed(message: &str, reason: impl Into<String>) -> Self {
        ProtoError::Malformed {
            message: message.to_owned(),
            path: String::new(),
            reason: reason.into(),
        }
    }
}

fn join(field: &str, rest: &str) -> String {
    if rest.is_empty() {
        field.to_owned()
    } else if rest.starts_with('[') {
        format!("{field}{rest}")
    } else {
        format!("{field}.{rest}")
    }
}
