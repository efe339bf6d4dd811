//! OpenAPI documents for kubectl: the `/openapi/v3` discovery root, one
//! `/openapi/v3/{api/v1 | apis/<g>/<v>}` document per group-version, and a
//! Swagger 2.0 `/openapi/v2` document.
//!
//! What kubectl relies on (kubernetes/kubernetes, staging/src/k8s.io/...):
//! * `client-go/openapi/client.go`, `kube-openapi/pkg/handler3`: the root is
//!   `{"paths": {"apis/<g>/<v>": {"serverRelativeURL": "/openapi/v3/apis/<g>/<v>?hash=H"}}}`.
//!   kubectl caches documents by that URL, so the hash must change with the body.
//! * `cli-runtime/pkg/resource/query_param_verifier_v3.go`: for a GVK, walk every
//!   path's `patch` operation; the first one whose `x-kubernetes-group-version-kind`
//!   (a single object) equals the GVK decides: supported iff one of the
//!   *operation-level* `parameters` has `name == "fieldValidation"`.
//!   Path-level parameters are not looked at.
//! * `kubectl/pkg/explain/v2/templates/plaintext.tmpl`: explain searches
//!   `/apis/<g>/<v>/<plural>`, `.../{name}`, `.../namespaces/{namespace}/<plural>`,
//!   `.../{name}` for a get/post/put/patch/delete operation carrying the GVK object,
//!   then takes the `components.schemas` entry whose `x-kubernetes-group-version-kind`
//!   is a *list* containing exactly that `{group, kind, version}` map.
//! * `apiextensions-apiserver/pkg/controller/openapi/builder/builder.go`: routes,
//!   operation ids, `metadata` as `$ref` ObjectMeta, list schema, embedded resources.
//! * `apiextensions-apiserver/pkg/controller/openapi/v2/conversion.go`
//!   (`ToStructuralOpenAPIV2`) and `controller.go` (`PruneDefaults`) for v2.

use serde_json::{Map, Value, json};

/// One served resource (a CRD version, or a built-in kind).
#[derive(Debug, Clone, Default)]
pub struct ResourceInfo {
    /// `""` for the core group.
    pub group: String,
    pub version: String,
    pub kind: String,
    pub list_kind: String,
    pub plural: String,
    pub namespaced: bool,
    /// `openAPIV3Schema` of a CRD version; `None` for built-ins.
    pub schema: Option<Value>,
    /// CRD `additionalPrinterColumns` (`{name,type,format?,description?,priority?,jsonPath}`).
    pub printer_columns: Vec<Value>,
    pub has_status_subresource: bool,
}

const META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.";
const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
const LIST_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";
const PATCH: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch";
const STATUS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
const DELETE_OPTIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions";

const API_VERSION_DESC: &str = "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources";
const KIND_DESC: &str = "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";
const EMBEDDED_API_VERSION_DESC: &str = "apiVersion defines the versioned schema of this representation of an object. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources";
const EMBEDDED_KIND_DESC: &str = "kind is a string value representing the type of this object. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";
const OBJECT_METADATA_DESC: &str = "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";
const LIST_METADATA_DESC: &str = "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";
pub(crate) const NAME_DESC: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
pub(crate) const CREATION_TIMESTAMP_DESC: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

/// Which document flavour is being built: they differ in `$ref` prefix,
/// parameter shape and schema filtering.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Flavor {
    V2,
    V3,
}

impl Flavor {
    fn reference(self, name: &str) -> String {
        match self {
            Flavor::V2 => format!("#/definitions/{name}"),
            Flavor::V3 => format!("#/components/schemas/{name}"),
        }
    }
    fn ref_schema(self, name: &str) -> Value {
        json!({ "$ref": self.reference(name) })
    }
}

// ---------------------------------------------------------------------------
// Root document and hashing
// ---------------------------------------------------------------------------

/// The `/openapi/v3` discovery document. Each entry is `(path, hash)` where path
/// is `"api/v1"` or `"apis/<group>/<version>"` (a leading `/` is tolerated).
pub fn openapi_v3_root(gvs: &[(String, String)]) -> Value {
    let mut paths = Map::new();
    for (gv, hash) in gvs {
        let gv = gv.trim_start_matches('/');
        paths.insert(
            gv.to_string(),
            json!({ "serverRelativeURL": format!("/openapi/v3/{gv}?hash={hash}") }),
        );
    }
    json!({ "paths": paths })
}

/// A stable, content-derived hash (32 upper-case hex digits, the real server
/// uses upper-case hex of a SHA-512) for the `?hash=` of [`openapi_v3_root`].
/// kubectl keeps a disk cache keyed by the URL, so a changed document must get
/// a changed hash.
pub fn document_hash(doc: &Value) -> String {
    let bytes = serde_json::to_vec(doc).unwrap_or_default();
    let lane = |seed: u64| {
        bytes.iter().fold(seed, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
        })
    };
    format!(
        "{:016X}{:016X}",
        lane(0xcbf2_9ce4_8422_2325),
        lane(0x6c62_272e_07bb_0142)
    )
}

/// The path key of a resource's group-version in [`openapi_v3_root`].
pub fn group_version_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// Name of the `components.schemas` / `definitions` entry for a kind.
/// CRDs get the reverse-DNS of their group (`hipaa.dev/v1alpha1.HipaaNetwork` ->
/// `dev.hipaa.v1alpha1.HipaaNetwork`, kube-openapi `util.ToRESTFriendlyName`);
/// built-in groups get the `io.k8s.api.<group>` names the real server uses.
pub fn definition_name(group: &str, version: &str, kind: &str) -> String {
    if group.is_empty() {
        return format!("io.k8s.api.core.{version}.{kind}");
    }
    if group == "apiextensions.k8s.io" {
        return format!("io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.{version}.{kind}");
    }
    if group == "apiregistration.k8s.io" {
        return format!("io.k8s.kube-aggregator.pkg.apis.apiregistration.{version}.{kind}");
    }
    if let Some(short) = group.strip_suffix(".k8s.io") {
        let first = short.split('.').next().unwrap_or(short);
        return format!("io.k8s.api.{first}.{version}.{kind}");
    }
    if !group.contains('.') {
        return format!("io.k8s.api.{group}.{version}.{kind}");
    }
    let reversed: Vec<&str> = group.split('.').rev().collect();
    format!("{}.{version}.{kind}", reversed.join("."))
}

fn gvk_object(group: &str, version: &str, kind: &str) -> Value {
    json!({ "group": group, "kind": kind, "version": version })
}

// ---------------------------------------------------------------------------
// Documents
// ---------------------------------------------------------------------------

/// The `/openapi/v3/apis/<g>/<v>` (or `/openapi/v3/api/v1`) document for the
/// resources of one group-version.
pub fn openapi_v3_group_version(resources: &[ResourceInfo]) -> Value {
    let mut schemas = meta_schemas(Flavor::V3);
    let mut paths = Map::new();
    for r in resources {
        add_resource(r, Flavor::V3, &mut schemas, &mut paths);
    }
    json!({
        "openapi": "3.0.0",
        "info": { "title": "Kubernetes CRD Swagger", "version": "v0.1.0" },
        "paths": paths,
        "components": { "schemas": schemas },
    })
}

/// A Swagger 2.0 `/openapi/v2` document for all given resources (all groups).
/// Note: kubectl/client-go fetch `/openapi/v2` as protobuf
/// (`application/com.github.proto-openapi.spec.v2@v1.0+protobuf`) only; this
/// JSON form serves other clients and `Accept: application/json`.
pub fn openapi_v2(resources: &[ResourceInfo]) -> Value {
    let mut definitions = meta_schemas(Flavor::V2);
    let mut paths = Map::new();
    for r in resources {
        add_resource(r, Flavor::V2, &mut definitions, &mut paths);
    }
    prune_defaults(&mut definitions);
    json!({
        "swagger": "2.0",
        "info": { "title": "Kubernetes", "version": "v0.1.0" },
        "paths": paths,
        "definitions": definitions,
    })
}

fn add_resource(
    r: &ResourceInfo,
    flavor: Flavor,
    schemas: &mut Map<String, Value>,
    paths: &mut Map<String, Value>,
) {
    let kind_name = definition_name(&r.group, &r.version, &r.kind);
    let list_name = definition_name(&r.group, &r.version, &r.list_kind);
    schemas.insert(kind_name.clone(), kind_schema(r, flavor));
    schemas.insert(list_name.clone(), list_schema(r, flavor, &kind_name));
    for (path, item) in resource_paths(r, flavor, &kind_name, &list_name) {
        paths.insert(path, item);
    }
}

// ---------------------------------------------------------------------------
// Schemas
// ---------------------------------------------------------------------------

fn kind_schema(r: &ResourceInfo, flavor: Flavor) -> Value {
    let gvk = json!([gvk_object(&r.group, &r.version, &r.kind)]);
    let mut out = match &r.schema {
        None => match flavor {
            // Built-in without a published schema: accept anything, but keep
            // apiVersion/kind/metadata so explain can descend into metadata.
            Flavor::V3 => {
                let mut s = json!({
                    "type": "object",
                    "x-kubernetes-preserve-unknown-fields": true,
                    "properties": {},
                });
                set_type_meta_and_metadata(&mut s, flavor);
                s
            }
            // builder.go: v2 gets a bare object, anything else makes kubectl's
            // v2 validation reject unknown fields.
            Flavor::V2 => json!({ "type": "object" }),
        },
        Some(schema) => {
            let mut s = schema.clone();
            structural_cleanup(&mut s);
            unfold_int_or_string(&mut s);
            if flavor == Flavor::V2 && is_true(&s, "x-kubernetes-preserve-unknown-fields") {
                json!({ "type": "object" })
            } else {
                if flavor == Flavor::V2 {
                    to_structural_v2(&mut s);
                }
                set_type_meta_and_metadata(&mut s, flavor);
                add_embedded_properties(&mut s, flavor);
                s
            }
        }
    };
    if let Some(obj) = out.as_object_mut() {
        obj.insert("x-kubernetes-group-version-kind".into(), gvk);
    }
    out
}

fn list_schema(r: &ResourceInfo, flavor: Flavor, kind_name: &str) -> Value {
    json!({
        "description": format!("{} is a list of {}", r.list_kind, r.kind),
        "required": ["items"],
        "properties": {
            "apiVersion": { "type": "string", "description": API_VERSION_DESC },
            "kind": { "type": "string", "description": KIND_DESC },
            "items": {
                "type": "array",
                "items": flavor.ref_schema(kind_name),
                "description": format!("List of {}. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md", r.plural),
            },
            "metadata": {
                "$ref": flavor.reference(LIST_META),
                "description": LIST_METADATA_DESC,
            },
        },
        "x-kubernetes-group-version-kind": [gvk_object(&r.group, &r.version, &r.list_kind)],
    })
}

fn is_true(s: &Value, key: &str) -> bool {
    s.get(key).and_then(Value::as_bool) == Some(true)
}

fn set_type_meta_and_metadata(s: &mut Value, flavor: Flavor) {
    let Some(obj) = s.as_object_mut() else { return };
    let props = obj
        .entry("properties")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Some(props) = props.as_object_mut() {
        props.insert(
            "metadata".into(),
            json!({ "$ref": flavor.reference(OBJECT_META), "description": OBJECT_METADATA_DESC }),
        );
        props.insert(
            "apiVersion".into(),
            json!({ "type": "string", "description": API_VERSION_DESC }),
        );
        props.insert(
            "kind".into(),
            json!({ "type": "string", "description": KIND_DESC }),
        );
    }
}

/// Child schemas of a schema node, by the JSON keys that hold schemas.
fn for_each_child(s: &mut Value, f: &mut dyn FnMut(&mut Value)) {
    let Some(obj) = s.as_object_mut() else { return };
    if let Some(Value::Object(props)) = obj.get_mut("properties") {
        for v in props.values_mut() {
            f(v);
        }
    }
    if let Some(items) = obj.get_mut("items") {
        match items {
            Value::Array(list) => list.iter_mut().for_each(&mut *f),
            other => f(other),
        }
    }
    if let Some(ap @ Value::Object(_)) = obj.get_mut("additionalProperties") {
        f(ap);
    }
    for key in ["allOf", "anyOf", "oneOf"] {
        if let Some(Value::Array(list)) = obj.get_mut(key) {
            list.iter_mut().for_each(&mut *f);
        }
    }
    if let Some(not) = obj.get_mut("not") {
        f(not);
    }
}

/// Drops what `structuralschema.NewStructural` does not carry (`example`, `id`,
/// `$schema`, ...), so the published schema is what the real server publishes.
fn structural_cleanup(s: &mut Value) {
    if let Some(obj) = s.as_object_mut() {
        for key in [
            "example",
            "id",
            "$schema",
            "$ref",
            "definitions",
            "dependencies",
            "additionalItems",
            "patternProperties",
        ] {
            obj.remove(key);
        }
    }
    for_each_child(s, &mut structural_cleanup);
}

fn int_or_string_any_of() -> Value {
    json!([{ "type": "integer" }, { "type": "string" }])
}

/// `Structural.Unfold`: `x-kubernetes-int-or-string: true` gains
/// `anyOf: [{type: integer}, {type: string}]` (or, if anyOf is taken, an allOf
/// entry carrying it) unless one of those patterns is already there.
fn unfold_int_or_string(s: &mut Value) {
    if is_true(s, "x-kubernetes-int-or-string") {
        let pattern = int_or_string_any_of();
        let has_any_of = s.get("anyOf") == Some(&pattern);
        let has_all_of = s
            .get("allOf")
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .and_then(|first| first.get("anyOf"))
            == Some(&pattern);
        if !has_any_of
            && !has_all_of
            && let Some(obj) = s.as_object_mut()
        {
            if obj.contains_key("anyOf") {
                let mut all_of = vec![json!({ "anyOf": pattern })];
                if let Some(Value::Array(existing)) = obj.remove("allOf") {
                    all_of.extend(existing);
                }
                obj.insert("allOf".into(), Value::Array(all_of));
            } else {
                obj.insert("anyOf".into(), pattern);
            }
        }
    }
    if let Some(Value::Object(props)) = s.get_mut("properties") {
        props.values_mut().for_each(unfold_int_or_string);
    }
    if let Some(items @ Value::Object(_)) = s.get_mut("items") {
        unfold_int_or_string(items);
    }
    if let Some(ap @ Value::Object(_)) = s.get_mut("additionalProperties") {
        unfold_int_or_string(ap);
    }
}

/// `ToStructuralOpenAPIV2`: parent first, then children.
fn to_structural_v2(s: &mut Value) {
    let Some(obj) = s.as_object_mut() else { return };
    for key in ["allOf", "oneOf", "anyOf", "not"] {
        obj.remove(key);
    }
    // Required fields whose schema is nullable are dropped (checked before the
    // children lose their `nullable`).
    let nullable_props: Vec<String> = match obj.get("properties") {
        Some(Value::Object(props)) => props
            .iter()
            .filter(|(_, v)| is_true(v, "nullable"))
            .map(|(k, _)| k.clone())
            .collect(),
        _ => Vec::new(),
    };
    let additional_nullable = obj
        .get("additionalProperties")
        .is_some_and(|ap| is_true(ap, "nullable"));
    if additional_nullable {
        obj.remove("required");
    } else if !nullable_props.is_empty()
        && let Some(Value::Array(req)) = obj.get_mut("required")
    {
        req.retain(|r| {
            !r.as_str()
                .is_some_and(|r| nullable_props.iter().any(|n| n == r))
        });
        if req.is_empty() {
            obj.remove("required");
        }
    }
    if obj.get("nullable").and_then(Value::as_bool) == Some(true) {
        obj.remove("type");
        obj.remove("items");
        obj.remove("properties");
    }
    obj.remove("nullable");
    let preserve = obj
        .get("x-kubernetes-preserve-unknown-fields")
        .and_then(Value::as_bool)
        == Some(true);
    if preserve {
        obj.remove("items");
        obj.remove("properties");
    }
    let ty = obj.get("type").and_then(Value::as_str).map(str::to_owned);
    if (ty.as_deref() == Some("array") && !obj.contains_key("items"))
        || (preserve && ty.as_deref() == Some("object"))
    {
        obj.remove("type");
    }
    for_each_child(s, &mut to_structural_v2);
}

/// `addEmbeddedProperties`: every `x-kubernetes-embedded-resource: true` node
/// gets apiVersion/kind/metadata and requires apiVersion and kind (not in v2
/// under `x-kubernetes-preserve-unknown-fields`).
fn add_embedded_properties(s: &mut Value, flavor: Flavor) {
    if let Some(Value::Object(props)) = s.get_mut("properties") {
        props
            .values_mut()
            .for_each(|v| add_embedded_properties(v, flavor));
    }
    if let Some(items @ Value::Object(_)) = s.get_mut("items") {
        add_embedded_properties(items, flavor);
    }
    if let Some(ap @ Value::Object(_)) = s.get_mut("additionalProperties") {
        add_embedded_properties(ap, flavor);
    }
    if flavor == Flavor::V2 && is_true(s, "x-kubernetes-preserve-unknown-fields") {
        return;
    }
    if !is_true(s, "x-kubernetes-embedded-resource") {
        return;
    }
    let Some(obj) = s.as_object_mut() else { return };
    let props = obj
        .entry("properties")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Some(props) = props.as_object_mut() {
        props.insert(
            "apiVersion".into(),
            json!({ "type": "string", "description": EMBEDDED_API_VERSION_DESC }),
        );
        props.insert(
            "kind".into(),
            json!({ "type": "string", "description": EMBEDDED_KIND_DESC }),
        );
        props.insert(
            "metadata".into(),
            json!({ "$ref": flavor.reference(OBJECT_META), "description": OBJECT_METADATA_DESC }),
        );
    }
    let req = obj
        .entry("required")
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Some(req) = req.as_array_mut() {
        for key in ["kind", "apiVersion"] {
            if !req.iter().any(|r| r == key) {
                req.push(Value::String(key.into()));
            }
        }
    }
}

/// `handler.PruneDefaults`, applied to v2 definitions.
fn prune_defaults(defs: &mut Map<String, Value>) {
    fn prune(s: &mut Value) {
        if let Some(obj) = s.as_object_mut() {
            obj.remove("default");
        }
        for_each_child(s, &mut prune);
    }
    defs.values_mut().for_each(prune);
}

fn meta_schemas(flavor: Flavor) -> Map<String, Value> {
    let r = |name: &str| flavor.reference(&format!("{META}{name}"));
    let string = |d: &str| json!({ "type": "string", "description": d });
    let time = |d: &str| json!({ "type": "string", "format": "date-time", "description": d });
    let mut m = Map::new();
    m.insert(
        OBJECT_META.into(),
        json!({
            "description": "ObjectMeta is metadata that all persisted resources must have, which includes all objects users must create.",
            "type": "object",
            "properties": {
                "annotations": {
                    "type": "object",
                    "additionalProperties": { "type": "string", "default": "" },
                    "description": "Annotations is an unstructured key value map stored with a resource that may be set by external tools to store and retrieve arbitrary metadata. They are not queryable and should be preserved when modifying objects. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/annotations",
                },
                "creationTimestamp": time(CREATION_TIMESTAMP_DESC),
                "deletionGracePeriodSeconds": {
                    "type": "integer", "format": "int64",
                    "description": "Number of seconds allowed for this object to gracefully terminate before it will be removed from the system. Only set when deletionTimestamp is also set. May only be shortened. Read-only.",
                },
                "deletionTimestamp": time("DeletionTimestamp is RFC 3339 date and time at which this resource will be deleted. This field is set by the server when a graceful deletion is requested by the user, and is not directly settable by a client. Read-only."),
                "finalizers": {
                    "type": "array",
                    "items": { "type": "string", "default": "" },
                    "description": "Must be empty before the object is deleted from the registry. Each entry is an identifier for the responsible component that will remove the entry from the list.",
                    "x-kubernetes-list-type": "set",
                    "x-kubernetes-patch-strategy": "merge",
                },
                "generateName": string("GenerateName is an optional prefix, used by the server, to generate a unique name ONLY IF the Name field has not been provided."),
                "generation": {
                    "type": "integer", "format": "int64",
                    "description": "A sequence number representing a specific generation of the desired state. Populated by the system. Read-only.",
                },
                "labels": {
                    "type": "object",
                    "additionalProperties": { "type": "string", "default": "" },
                    "description": "Map of string keys and values that can be used to organize and categorize (scope and select) objects. May match selectors of replication controllers and services. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels",
                },
                "managedFields": {
                    "type": "array",
                    "items": { "$ref": r("ManagedFieldsEntry") },
                    "description": "ManagedFields maps workflow-id and version to the set of fields that are managed by that workflow. This is mostly for internal housekeeping, and users typically shouldn't need to set or understand this field.",
                    "x-kubernetes-list-type": "atomic",
                },
                "name": string(NAME_DESC),
                "namespace": string("Namespace defines the space within which each name must be unique. An empty namespace is equivalent to the \"default\" namespace, but \"default\" is the canonical representation. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/namespaces"),
                "ownerReferences": {
                    "type": "array",
                    "items": { "$ref": r("OwnerReference") },
                    "description": "List of objects depended by this object. If ALL objects in the list have been deleted, this object will be garbage collected. If this object is managed by a controller, then an entry in this list will point to this controller, with the controller field set to true. There cannot be more than one managing controller.",
                    "x-kubernetes-list-map-keys": ["uid"],
                    "x-kubernetes-list-type": "map",
                    "x-kubernetes-patch-merge-key": "uid",
                    "x-kubernetes-patch-strategy": "merge",
                },
                "resourceVersion": string("An opaque value that represents the internal version of this object that can be used by clients to determine when objects have changed. Populated by the system. Read-only."),
                "selfLink": string("Deprecated: selfLink is a legacy read-only field that is no longer populated by the system."),
                "uid": string("UID is the unique in time and space value for this object. It is typically generated by the server on successful creation of a resource and is not allowed to change on PUT operations. Populated by the system. Read-only."),
            },
        }),
    );
    m.insert(
        LIST_META.into(),
        json!({
            "description": "ListMeta describes metadata that synthetic resources must have, including lists and various status objects.",
            "type": "object",
            "properties": {
                "continue": string("continue may be set if the user set a limit on the number of items returned, and indicates that the server has more data available."),
                "remainingItemCount": { "type": "integer", "format": "int64", "description": "remainingItemCount is the number of subsequent items in the list which are not included in this list response." },
                "resourceVersion": string("String that identifies the server's internal version of this object that can be used by clients to determine when objects have changed. Populated by the system. Read-only."),
                "selfLink": string("Deprecated: selfLink is a legacy read-only field that is no longer populated by the system."),
            },
        }),
    );
    m.insert(
        format!("{META}OwnerReference"),
        json!({
            "description": "OwnerReference contains enough information to let you identify an owning object. An owning object must be in the same namespace as the dependent, or be cluster-scoped, so there is no namespace field.",
            "type": "object",
            "required": ["apiVersion", "kind", "name", "uid"],
            "properties": {
                "apiVersion": string("API version of the referent."),
                "blockOwnerDeletion": { "type": "boolean", "description": "If true, AND if the owner has the \"foregroundDeletion\" finalizer, then the owner cannot be deleted from the key-value store until this reference is removed." },
                "controller": { "type": "boolean", "description": "If true, this reference points to the managing controller." },
                "kind": string("Kind of the referent."),
                "name": string("Name of the referent."),
                "uid": string("UID of the referent."),
            },
            "x-kubernetes-map-type": "atomic",
        }),
    );
    m.insert(
        format!("{META}ManagedFieldsEntry"),
        json!({
            "description": "ManagedFieldsEntry is a workflow-id, a FieldSet and the group version of the resource that the fieldset applies to.",
            "type": "object",
            "properties": {
                "apiVersion": string("APIVersion defines the version of this resource that this field set applies to."),
                "fieldsType": string("FieldsType is the discriminator for the different fields format and version. There is currently only one possible value: \"FieldsV1\""),
                "fieldsV1": { "type": "object", "description": "FieldsV1 holds the first JSON version format as described in the \"FieldsV1\" type." },
                "manager": string("Manager is an identifier of the workflow managing these fields."),
                "operation": string("Operation is the type of operation which lead to this ManagedFieldsEntry being created. The only valid values for this field are 'Apply' and 'Update'."),
                "subresource": string("Subresource is the name of the subresource used to update that object, or empty string if the object was updated through the main resource."),
                "time": time("Time is the timestamp of when the ManagedFields entry was added."),
            },
        }),
    );
    m.insert(
        PATCH.into(),
        json!({
            "description": "Patch is provided to give a concrete name and type to the Kubernetes PATCH request body.",
            "type": "object",
        }),
    );
    m.insert(
        STATUS.into(),
        json!({
            "description": "Status is a return value for calls that don't return other objects.",
            "type": "object",
            "properties": {
                "apiVersion": string(API_VERSION_DESC),
                "code": { "type": "integer", "format": "int32", "description": "Suggested HTTP return code for this status, 0 if not set." },
                "details": { "type": "object", "x-kubernetes-preserve-unknown-fields": true, "description": "Extended data associated with the reason." },
                "kind": string(KIND_DESC),
                "message": string("A human-readable description of the status of this operation."),
                "metadata": { "$ref": flavor.reference(LIST_META), "description": LIST_METADATA_DESC },
                "reason": string("A machine-readable description of why this operation is in the \"Failure\" status."),
                "status": string("Status of the operation. One of: \"Success\" or \"Failure\"."),
            },
        }),
    );
    m.insert(
        DELETE_OPTIONS.into(),
        json!({
            "description": "DeleteOptions may be provided when deleting an API object.",
            "type": "object",
            "properties": {
                "apiVersion": string(API_VERSION_DESC),
                "dryRun": { "type": "array", "items": { "type": "string", "default": "" }, "description": "When present, indicates that modifications should not be persisted.", "x-kubernetes-list-type": "atomic" },
                "gracePeriodSeconds": { "type": "integer", "format": "int64", "description": "The duration in seconds before the object should be deleted." },
                "kind": string(KIND_DESC),
                "orphanDependents": { "type": "boolean", "description": "Deprecated: please use the PropagationPolicy." },
                "preconditions": { "type": "object", "description": "Must be fulfilled before a deletion is carried out.", "properties": { "resourceVersion": string("Specifies the target ResourceVersion"), "uid": string("Specifies the target UID.") } },
                "propagationPolicy": string("Whether and how garbage collection will be performed. Acceptable values are: 'Orphan', 'Background', 'Foreground'."),
            },
        }),
    );
    m
}

// ---------------------------------------------------------------------------
// Paths and operations
// ---------------------------------------------------------------------------

/// A parameter before it is rendered in the v2 or v3 shape.
struct Param {
    name: &'static str,
    location: &'static str,
    ty: &'static str,
    description: String,
}

impl Param {
    fn query(name: &'static str, ty: &'static str, description: &str) -> Param {
        Param {
            name,
            location: "query",
            ty,
            description: description.to_string(),
        }
    }

    fn render(&self, flavor: Flavor) -> Value {
        let mut p = Map::new();
        p.insert("description".into(), json!(self.description));
        p.insert("in".into(), json!(self.location));
        p.insert("name".into(), json!(self.name));
        if self.location == "path" {
            p.insert("required".into(), json!(true));
        }
        match flavor {
            Flavor::V3 => {
                p.insert(
                    "schema".into(),
                    json!({ "type": self.ty, "uniqueItems": true }),
                );
            }
            Flavor::V2 => {
                p.insert("type".into(), json!(self.ty));
                p.insert("uniqueItems".into(), json!(true));
            }
        }
        Value::Object(p)
    }
}

const FIELD_VALIDATION_DESC: &str = "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore: This will ignore any unknown fields that are silently dropped from the object, and will ignore all but the last duplicate field that the decoder encounters. This is the default behavior prior to v1.23. - Warn: This will send a warning via the standard warning response header for each unknown field that is dropped from the object, and for each duplicate field that is encountered. The request will still succeed if there are no other errors, and will only persist the last of any duplicate fields. This is the default in v1.23+ - Strict: This will fail the request with a BadRequest error if any unknown fields would be dropped from the object, or if any duplicate fields are present. The error returned from the server will contain all unknown and duplicate fields encountered.";
const DRY_RUN_DESC: &str = "When present, indicates that modifications should not be persisted. An invalid or unrecognized dryRun directive will result in an error response and no further processing of the request. Valid values are: - All: all dry run stages will be processed";
const FIELD_MANAGER_DESC: &str = "fieldManager is a name associated with the actor or entity that is making these changes. The value must be less than or 128 characters long, and only contain printable characters, as defined by https://golang.org/pkg/unicode/#IsPrint.";
const PRETTY_DESC: &str = "If 'true', then the output is pretty printed. Defaults to 'false' unless the user-agent indicates a browser or command-line HTTP tool (curl and wget).";

/// `endpoints.AddObjectParams` for the options type of each action.
fn action_params(action: &str) -> Vec<Param> {
    let q = Param::query;
    let write = || {
        vec![
            q("dryRun", "string", DRY_RUN_DESC),
            q("fieldManager", "string", FIELD_MANAGER_DESC),
            q("fieldValidation", "string", FIELD_VALIDATION_DESC),
        ]
    };
    let list = || {
        vec![
            q(
                "allowWatchBookmarks",
                "boolean",
                "allowWatchBookmarks requests watch events with type \"BOOKMARK\".",
            ),
            q(
                "continue",
                "string",
                "The continue option should be set when retrieving more results from the server.",
            ),
            q(
                "fieldSelector",
                "string",
                "A selector to restrict the list of returned objects by their fields. Defaults to everything.",
            ),
            q(
                "labelSelector",
                "string",
                "A selector to restrict the list of returned objects by their labels. Defaults to everything.",
            ),
            q(
                "limit",
                "integer",
                "limit is a maximum number of responses to return for a list call.",
            ),
            q(
                "resourceVersion",
                "string",
                "resourceVersion sets a constraint on what resource versions a request may be served from.",
            ),
            q(
                "resourceVersionMatch",
                "string",
                "resourceVersionMatch determines how resourceVersion is applied to list calls.",
            ),
            q(
                "sendInitialEvents",
                "boolean",
                "`sendInitialEvents=true` may be set together with `watch=true`.",
            ),
            q(
                "timeoutSeconds",
                "integer",
                "Timeout for the list/watch call.",
            ),
            q(
                "watch",
                "boolean",
                "Watch for changes to the described resources and return them as a stream of add, update, and remove notifications.",
            ),
        ]
    };
    let delete = || {
        vec![
            q("dryRun", "string", DRY_RUN_DESC),
            q(
                "gracePeriodSeconds",
                "integer",
                "The duration in seconds before the object should be deleted.",
            ),
            q(
                "ignoreStoreReadErrorWithClusterBreakingPotential",
                "boolean",
                "if set to true, it will trigger an unsafe deletion of the resource in case the normal deletion flow fails with a corrupt object error.",
            ),
            q(
                "orphanDependents",
                "boolean",
                "Deprecated: please use the PropagationPolicy.",
            ),
            q(
                "propagationPolicy",
                "string",
                "Whether and how garbage collection will be performed.",
            ),
        ]
    };
    match action {
        "list" => list(),
        "deletecollection" => {
            let mut p = list();
            p.retain(|p| p.name != "allowWatchBookmarks" && p.name != "watch");
            p.extend(delete());
            p
        }
        "post" | "put" => write(),
        "patch" => {
            let mut p = write();
            p.push(q("force", "boolean", "Force is going to \"force\" Apply requests. It means user will re-acquire conflicting fields owned by other people. Force flag must be unset for non-apply patch requests."));
            p
        }
        "delete" => delete(),
        _ => Vec::new(),
    }
}

/// kube-openapi `ToValidOperationID`.
fn to_valid_operation_id(s: &str, capitalize_first: bool) -> String {
    let mut out = String::new();
    let mut capitalize = capitalize_first;
    for (i, c) in s.chars().enumerate() {
        if c.is_alphabetic() || c == '_' || (i != 0 && c.is_ascii_digit()) {
            if capitalize {
                out.extend(c.to_uppercase());
                capitalize = false;
            } else {
                out.push(c);
            }
        } else {
            capitalize = true;
        }
    }
    out
}

/// apiserver `GetArticleForNoun`.
fn article_for(noun: &str, padding: &str) -> String {
    if !noun.ends_with("ss") && noun.ends_with('s') {
        return padding.to_string();
    }
    let vowel = noun
        .chars()
        .next()
        .is_some_and(|c| "aeiou".contains(c.to_ascii_lowercase()));
    format!("{padding}{}{padding}", if vowel { "an" } else { "a" })
}

struct Route<'a> {
    method: &'static str,
    action: &'static str,
    /// `list`, `create`, `deletecollection`, `read`, `replace`, `delete`, `patch`.
    verb: &'static str,
    sub: &'a str,
    operation: String,
}

fn resource_paths(
    r: &ResourceInfo,
    flavor: Flavor,
    kind_name: &str,
    list_name: &str,
) -> Vec<(String, Value)> {
    let prefix = if r.group.is_empty() {
        format!("/api/{}", r.version)
    } else {
        format!("/apis/{}/{}", r.group, r.version)
    };
    // operation id prefix and tag (openapi.GetOperationIDAndTags)
    let group_part = if r.group.is_empty() {
        "core"
    } else {
        r.group.strip_suffix(".k8s.io").unwrap_or(&r.group)
    };
    let tag = format!(
        "{}_{}",
        to_valid_operation_id(group_part, false),
        to_valid_operation_id(&r.version, false)
    );
    let id_mid = format!(
        "{}{}",
        to_valid_operation_id(group_part, true),
        to_valid_operation_id(&r.version, true)
    );
    let ns = if r.namespaced { "Namespaced" } else { "" };
    let route = |method, action, verb, sub: &'static str| Route {
        method,
        action,
        verb,
        sub,
        operation: format!("{verb}{ns}{}{}", r.kind, title(sub)),
    };

    let mut out = Vec::new();
    let root = if r.namespaced {
        let all = Route {
            method: "get",
            action: "list",
            verb: "list",
            sub: "",
            operation: format!("list{}ForAllNamespaces", r.kind),
        };
        out.push((format!("{prefix}/{}", r.plural), vec![all]));
        format!("{prefix}/namespaces/{{namespace}}/{}", r.plural)
    } else {
        format!("{prefix}/{}", r.plural)
    };
    out.push((
        root.clone(),
        vec![
            route("get", "list", "list", ""),
            route("post", "post", "create", ""),
            route("delete", "deletecollection", "deletecollection", ""),
        ],
    ));
    out.push((
        format!("{root}/{{name}}"),
        vec![
            route("get", "get", "read", ""),
            route("put", "put", "replace", ""),
            route("delete", "delete", "delete", ""),
            route("patch", "patch", "patch", ""),
        ],
    ));
    if r.has_status_subresource {
        out.push((
            format!("{root}/{{name}}/status"),
            vec![
                route("get", "get", "read", "status"),
                route("put", "put", "replace", "status"),
                route("patch", "patch", "patch", "status"),
            ],
        ));
    }

    let ctx = OpCtx {
        r,
        flavor,
        kind_name,
        list_name,
        tag: &tag,
        id_mid: &id_mid,
    };
    out.into_iter()
        .map(|(path, routes)| {
            let item = path_item(&ctx, &path, &routes);
            (path, item)
        })
        .collect()
}

fn title(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

struct OpCtx<'a> {
    r: &'a ResourceInfo,
    flavor: Flavor,
    kind_name: &'a str,
    list_name: &'a str,
    tag: &'a str,
    id_mid: &'a str,
}

fn path_item(ctx: &OpCtx, path: &str, routes: &[Route]) -> Value {
    // All parameters of each route, then hoist the ones every route shares
    // to the path item, as kube-openapi's builders do.
    let mut per_route: Vec<Vec<Param>> = routes
        .iter()
        .map(|route| {
            let mut params = vec![Param::query("pretty", "string", PRETTY_DESC)];
            if path.contains("{namespace}") {
                params.push(Param {
                    name: "namespace",
                    location: "path",
                    ty: "string",
                    description: "object name and auth scope, such as for teams and projects"
                        .into(),
                });
            }
            if path.contains("{name}") {
                params.push(Param {
                    name: "name",
                    location: "path",
                    ty: "string",
                    description: format!("name of the {}", ctx.r.kind),
                });
            }
            params.extend(action_params(route.action));
            params.sort_by(|a, b| a.name.cmp(b.name));
            params
        })
        .collect();
    let shared: Vec<&'static str> = per_route[0]
        .iter()
        .map(|p| p.name)
        .filter(|n| per_route.iter().all(|ps| ps.iter().any(|p| p.name == *n)))
        .collect();
    let path_params: Vec<Value> = per_route[0]
        .iter()
        .filter(|p| shared.contains(&p.name))
        .map(|p| p.render(ctx.flavor))
        .collect();
    for ps in &mut per_route {
        ps.retain(|p| !shared.contains(&p.name));
    }

    let mut item = Map::new();
    for (route, params) in routes.iter().zip(per_route) {
        item.insert(route.method.to_string(), operation(ctx, route, params));
    }
    if !path_params.is_empty() {
        item.insert("parameters".into(), Value::Array(path_params));
    }
    Value::Object(item)
}

fn operation(ctx: &OpCtx, route: &Route, params: Vec<Param>) -> Value {
    let r = ctx.r;
    let flavor = ctx.flavor;
    let sub = if route.sub.is_empty() {
        String::new()
    } else {
        format!(" {} of", route.sub)
    };
    let description = match route.verb {
        "list" => format!("list objects of kind {}", r.kind),
        "read" | "replace" => format!("{}{sub} the specified {}", route.verb, r.kind),
        "patch" => format!("partially update{sub} the specified {}", r.kind),
        "create" | "delete" => {
            format!("{}{sub}{}{}", route.verb, article_for(&r.kind, " "), r.kind)
        }
        _ => format!("delete collection of {}", r.kind),
    };
    // GetOperationIDAndTags: the verb prefix (shortest match, so
    // "deletecollection..." splits as "delete" + "collection..."), then
    // group+version, then the rest.
    let verb_prefix = ["list", "create", "read", "replace", "delete", "patch"]
        .into_iter()
        .find(|v| route.operation.starts_with(v))
        .unwrap_or("");
    let rest = &route.operation[verb_prefix.len()..];
    let operation_id = format!(
        "{verb_prefix}{}{}",
        ctx.id_mid,
        to_valid_operation_id(rest, true)
    );

    let (ok_schema, extra_codes): (&str, &[(&str, &str)]) = match route.action {
        "list" => (ctx.list_name, &[]),
        "post" => (ctx.kind_name, &[("201", "Created"), ("202", "Accepted")]),
        "put" => (ctx.kind_name, &[("201", "Created")]),
        "delete" => (STATUS, &[("202", "Accepted")]),
        "deletecollection" => (STATUS, &[]),
        _ => (ctx.kind_name, &[]),
    };
    let produces = ["application/json", "application/yaml"];
    let response = |desc: &str| match flavor {
        Flavor::V3 => {
            let content: Map<String, Value> = produces
                .iter()
                .map(|ct| {
                    (
                        ct.to_string(),
                        json!({ "schema": flavor.ref_schema(ok_schema) }),
                    )
                })
                .collect();
            json!({ "description": desc, "content": content })
        }
        Flavor::V2 => json!({ "description": desc, "schema": flavor.ref_schema(ok_schema) }),
    };
    let mut responses = Map::new();
    responses.insert("200".into(), response("OK"));
    for (code, desc) in extra_codes {
        responses.insert(code.to_string(), response(desc));
    }
    responses.insert("401".into(), json!({ "description": "Unauthorized" }));

    // No "application/strategic-merge-patch+json": see the test
    // `every_write_operation_carries_field_validation_at_operation_level`.
    let patch_types = [
        "application/json-patch+json",
        "application/merge-patch+json",
        "application/apply-patch+yaml",
    ];
    let body: Option<(&str, bool)> = match route.action {
        "post" | "put" => Some((ctx.kind_name, true)),
        "patch" => Some((PATCH, true)),
        "delete" => Some((DELETE_OPTIONS, false)),
        _ => None,
    };

    let mut op = Map::new();
    op.insert("description".into(), json!(description));
    op.insert("operationId".into(), json!(operation_id));
    let mut rendered: Vec<Value> = params.iter().map(|p| p.render(flavor)).collect();
    match flavor {
        Flavor::V3 => {
            if let Some((schema, _)) = body {
                let content: Map<String, Value> = if route.action == "patch" {
                    patch_types
                        .iter()
                        .map(|ct| {
                            (
                                ct.to_string(),
                                json!({ "schema": flavor.ref_schema(schema) }),
                            )
                        })
                        .collect()
                } else {
                    [(
                        "*/*".to_string(),
                        json!({ "schema": flavor.ref_schema(schema) }),
                    )]
                    .into_iter()
                    .collect()
                };
                op.insert("requestBody".into(), json!({ "content": content }));
            }
        }
        Flavor::V2 => {
            if let Some((schema, required)) = body {
                let mut b =
                    json!({ "name": "body", "in": "body", "schema": flavor.ref_schema(schema) });
                if required {
                    b["required"] = json!(true);
                }
                rendered.insert(0, b);
            }
            let consumes: Vec<&str> = if route.action == "patch" {
                patch_types.to_vec()
            } else {
                vec!["*/*"]
            };
            op.insert("consumes".into(), json!(consumes));
            op.insert("produces".into(), json!(produces));
            op.insert("schemes".into(), json!(["https"]));
        }
    }
    if !rendered.is_empty() {
        op.insert("parameters".into(), Value::Array(rendered));
    }
    op.insert("responses".into(), Value::Object(responses));
    op.insert("tags".into(), json!([ctx.tag]));
    op.insert("x-kubernetes-action".into(), json!(route.action));
    op.insert(
        "x-kubernetes-group-version-kind".into(),
        gvk_object(&r.group, &r.version, &r.kind),
    );
    Value::Object(op)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crd(namespaced: bool, status: bool) -> ResourceInfo {
        ResourceInfo {
            group: "hipaa.dev".into(),
            version: "v1alpha1".into(),
            kind: "HipaaNetwork".into(),
            list_kind: "HipaaNetworkList".into(),
            plural: "hipaanetworks".into(),
            namespaced,
            schema: Some(json!({
                "type": "object",
                "description": "HipaaNetwork is a HIPAA-compliant VPC.",
                "properties": {
                    "spec": {
                        "type": "object",
                        "description": "Desired network.",
                        "required": ["cidr"],
                        "properties": {
                            "cidr": { "type": "string", "example": "10.0.0.0/16" },
                            "port": { "x-kubernetes-int-or-string": true },
                            "region": { "type": "string", "default": "us-east-1" },
                        },
                        "x-kubernetes-validations": [{ "rule": "self.cidr != ''" }],
                    },
                    "status": {
                        "type": "object",
                        "x-kubernetes-preserve-unknown-fields": true,
                        "properties": { "vpcId": { "type": "string", "nullable": true } },
                    },
                },
            })),
            printer_columns: vec![],
            has_status_subresource: status,
        }
    }

    fn builtin(group: &str, kind: &str, plural: &str, namespaced: bool) -> ResourceInfo {
        ResourceInfo {
            group: group.into(),
            version: "v1".into(),
            kind: kind.into(),
            list_kind: format!("{kind}List"),
            plural: plural.into(),
            namespaced,
            ..Default::default()
        }
    }

    /// Mirror of cli-runtime `supportsQueryParamV3` (query_param_verifier_v3.go):
    /// the first PATCH operation carrying the GVK decides, by its own parameters.
    fn supports_query_param_v3(doc: &Value, gvk: (&str, &str, &str), param: &str) -> bool {
        let Some(paths) = doc["paths"].as_object() else {
            return false;
        };
        for item in paths.values() {
            let Some(op) = item.get("patch") else {
                continue;
            };
            let ext = &op["x-kubernetes-group-version-kind"];
            if ext["group"] != gvk.0 || ext["version"] != gvk.1 || ext["kind"] != gvk.2 {
                continue;
            }
            return op["parameters"]
                .as_array()
                .is_some_and(|ps| ps.iter().any(|p| p["name"] == param));
        }
        false
    }

    /// Mirror of cli-runtime `supportsQueryParam` (v2): same walk, inline
    /// non-body query parameters.
    fn supports_query_param_v2(doc: &Value, gvk: (&str, &str, &str), param: &str) -> bool {
        let Some(paths) = doc["paths"].as_object() else {
            return false;
        };
        for item in paths.values() {
            let Some(op) = item.get("patch") else {
                continue;
            };
            let ext = &op["x-kubernetes-group-version-kind"];
            if ext["group"] != gvk.0 || ext["version"] != gvk.1 || ext["kind"] != gvk.2 {
                continue;
            }
            return op["parameters"].as_array().is_some_and(|ps| {
                ps.iter()
                    .any(|p| p["name"] == param && p["in"] == "query" && p["type"].is_string())
            });
        }
        false
    }

    /// Mirror of kubectl explain's plaintext.tmpl: GVK from an operation on one
    /// of four resource paths, then the schema whose GVK list contains it.
    fn explain_lookup<'a>(
        doc: &'a Value,
        group: &str,
        version: &str,
        resource: &str,
    ) -> Option<&'a Value> {
        let prefix = if group.is_empty() {
            "/api".to_string()
        } else {
            format!("/apis/{group}")
        };
        let candidates = [
            format!("{prefix}/{version}/{resource}"),
            format!("{prefix}/{version}/{resource}/{{name}}"),
            format!("{prefix}/{version}/namespaces/{{namespace}}/{resource}"),
            format!("{prefix}/{version}/namespaces/{{namespace}}/{resource}/{{name}}"),
        ];
        let mut gvk = None;
        for path in &candidates {
            if let Some(item) = doc["paths"].get(path) {
                for method in ["get", "post", "put", "patch", "delete"] {
                    if let Some(g) = item
                        .get(method)
                        .and_then(|op| op.get("x-kubernetes-group-version-kind"))
                    {
                        gvk = Some(g);
                        break;
                    }
                }
            }
        }
        let gvk = gvk?;
        doc["components"]["schemas"]
            .as_object()?
            .values()
            .find(|s| {
                s["x-kubernetes-group-version-kind"]
                    .as_array()
                    .is_some_and(|list| list.contains(gvk))
            })
    }

    fn resolve<'a>(doc: &'a Value, s: &'a Value) -> &'a Value {
        match s.get("$ref").and_then(Value::as_str) {
            Some(r) => doc
                .pointer(r.trim_start_matches('#'))
                .unwrap_or(&Value::Null),
            None => s,
        }
    }

    #[test]
    fn v3_root_document_shape() {
        // (input path, expected key, expected URL): what client-go's openapi client indexes.
        let cases = [
            (
                "apis/hipaa.dev/v1alpha1",
                "apis/hipaa.dev/v1alpha1",
                "/openapi/v3/apis/hipaa.dev/v1alpha1?hash=ABC",
            ),
            ("api/v1", "api/v1", "/openapi/v3/api/v1?hash=ABC"),
            (
                "/apis/apps/v1",
                "apis/apps/v1",
                "/openapi/v3/apis/apps/v1?hash=ABC",
            ),
        ];
        let gvs: Vec<(String, String)> = cases
            .iter()
            .map(|c| (c.0.to_string(), "ABC".to_string()))
            .collect();
        let root = openapi_v3_root(&gvs);
        assert_eq!(
            root.as_object().unwrap().len(),
            1,
            "only `paths` at the top"
        );
        for (_, key, url) in cases {
            // useClientPrefix in client-go requires the /openapi/v3 prefix.
            assert_eq!(root["paths"][key]["serverRelativeURL"], url, "{key}");
        }
        assert_eq!(group_version_path("", "v1"), "api/v1");
        assert_eq!(
            group_version_path("hipaa.dev", "v1alpha1"),
            "apis/hipaa.dev/v1alpha1"
        );
    }

    #[test]
    fn document_hash_tracks_content() {
        let a = openapi_v3_group_version(&[crd(true, true)]);
        let b = openapi_v3_group_version(&[crd(true, false)]);
        assert_eq!(
            document_hash(&a),
            document_hash(&a.clone()),
            "stable for equal documents"
        );
        assert_ne!(
            document_hash(&a),
            document_hash(&b),
            "changes when the document changes"
        );
        assert_eq!(document_hash(&a).len(), 32);
    }

    #[test]
    fn definition_names() {
        let cases = [
            (
                ("hipaa.dev", "v1alpha1", "HipaaNetwork"),
                "dev.hipaa.v1alpha1.HipaaNetwork",
            ),
            (
                ("ops.hipaa.example.com", "v1", "Audit"),
                "com.example.hipaa.ops.v1.Audit",
            ),
            (("", "v1", "Namespace"), "io.k8s.api.core.v1.Namespace"),
            (
                ("apps", "v1", "Deployment"),
                "io.k8s.api.apps.v1.Deployment",
            ),
            (
                ("rbac.authorization.k8s.io", "v1", "Role"),
                "io.k8s.api.rbac.v1.Role",
            ),
            (
                ("apiextensions.k8s.io", "v1", "CustomResourceDefinition"),
                "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition",
            ),
        ];
        for ((g, v, k), want) in cases {
            assert_eq!(definition_name(g, v, k), want, "{g}/{v} {k}");
        }
    }

    #[test]
    fn v3_field_validation_found_by_query_param_verifier() {
        // (resources, GVK, param, expected): what `kubectl apply --validate=strict` asks.
        let hn = ("hipaa.dev", "v1alpha1", "HipaaNetwork");
        type Gvk<'a> = (&'a str, &'a str, &'a str);
        // (resources, GVK, param, expected, proof)
        let cases: Vec<(Vec<ResourceInfo>, Gvk, &str, bool, &str)> = vec![
            (
                vec![crd(true, true)],
                hn,
                "fieldValidation",
                true,
                "namespaced CRD with /status",
            ),
            (
                vec![crd(false, false)],
                hn,
                "fieldValidation",
                true,
                "cluster-scoped CRD",
            ),
            (
                vec![crd(true, true)],
                hn,
                "fieldManager",
                true,
                "other write params are declared too",
            ),
            (
                vec![crd(true, true)],
                hn,
                "force",
                true,
                "patch carries force",
            ),
            (
                vec![crd(true, true)],
                hn,
                "noSuchParam",
                false,
                "unknown params are not claimed",
            ),
            (
                vec![crd(true, true)],
                ("hipaa.dev", "v1alpha1", "Other"),
                "fieldValidation",
                false,
                "other GVK",
            ),
            (
                vec![
                    builtin("", "Namespace", "namespaces", false),
                    builtin("", "ConfigMap", "configmaps", true),
                ],
                ("", "v1", "Namespace"),
                "fieldValidation",
                true,
                "built-in Namespace (kubectl's CRD fallback probes it)",
            ),
        ];
        for (resources, gvk, param, want, why) in cases {
            let doc = openapi_v3_group_version(&resources);
            assert!(doc["paths"].is_object(), "verifier rejects a nil Paths");
            assert_eq!(supports_query_param_v3(&doc, gvk, param), want, "{why}");
        }
    }

    #[test]
    fn every_write_operation_carries_field_validation_at_operation_level() {
        // Go map order is random, so *every* PATCH for the GVK must qualify;
        // POST/PUT carry it too (kubectl create/replace).
        let doc = openapi_v3_group_version(&[crd(true, true), builtin("", "Pod", "pods", true)]);
        let mut seen = 0;
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in ["post", "put", "patch"] {
                if let Some(op) = item.get(method) {
                    seen += 1;
                    let names: Vec<&Value> = op["parameters"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|p| &p["name"])
                        .collect();
                    assert!(
                        names.contains(&&json!("fieldValidation")),
                        "{method} {path}"
                    );
                    assert_eq!(op["x-kubernetes-action"], method, "{path}");
                    // kubectl apply (patcher.go gvkSupportsPatchOpenAPIV3) builds a
                    // strategic merge patch from the v3 schema only when PATCH accepts
                    // it; without it kubectl uses its compiled-in types (built-ins)
                    // or a JSON merge patch (CRDs), which our permissive built-in
                    // schemas need.
                    let smp =
                        &op["requestBody"]["content"]["application/strategic-merge-patch+json"];
                    assert!(smp.is_null(), "{method} {path}");
                }
            }
            let path_level: Vec<&Value> = item["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| &p["name"])
                .collect();
            assert!(
                !path_level.contains(&&json!("fieldValidation")),
                "never hoisted: {path}"
            );
        }
        assert_eq!(
            seen,
            5 + 3,
            "CRD: post, put, patch + status put/patch; Pod (no status here): 3"
        );
    }

    #[test]
    fn v3_paths_operation_ids_and_parameters() {
        let doc = openapi_v3_group_version(&[crd(true, true)]);
        let p = &doc["paths"];
        let base = "/apis/hipaa.dev/v1alpha1/namespaces/{namespace}/hipaanetworks";
        // (path, method, operationId, action)
        let cases = [
            (
                "/apis/hipaa.dev/v1alpha1/hipaanetworks",
                "get",
                "listHipaaDevV1alpha1HipaaNetworkForAllNamespaces",
                "list",
            ),
            (
                base,
                "get",
                "listHipaaDevV1alpha1NamespacedHipaaNetwork",
                "list",
            ),
            (
                base,
                "post",
                "createHipaaDevV1alpha1NamespacedHipaaNetwork",
                "post",
            ),
            (
                base,
                "delete",
                "deleteHipaaDevV1alpha1CollectionNamespacedHipaaNetwork",
                "deletecollection",
            ),
            (
                "/apis/hipaa.dev/v1alpha1/namespaces/{namespace}/hipaanetworks/{name}",
                "get",
                "readHipaaDevV1alpha1NamespacedHipaaNetwork",
                "get",
            ),
            (
                "/apis/hipaa.dev/v1alpha1/namespaces/{namespace}/hipaanetworks/{name}",
                "put",
                "replaceHipaaDevV1alpha1NamespacedHipaaNetwork",
                "put",
            ),
            (
                "/apis/hipaa.dev/v1alpha1/namespaces/{namespace}/hipaanetworks/{name}",
                "delete",
                "deleteHipaaDevV1alpha1NamespacedHipaaNetwork",
                "delete",
            ),
            (
                "/apis/hipaa.dev/v1alpha1/namespaces/{namespace}/hipaanetworks/{name}",
                "patch",
                "patchHipaaDevV1alpha1NamespacedHipaaNetwork",
                "patch",
            ),
            (
                "/apis/hipaa.dev/v1alpha1/namespaces/{namespace}/hipaanetworks/{name}/status",
                "patch",
                "patchHipaaDevV1alpha1NamespacedHipaaNetworkStatus",
                "patch",
            ),
        ];
        for (path, method, id, action) in cases {
            let op = &p[path][method];
            assert_eq!(op["operationId"], id, "{method} {path}");
            assert_eq!(op["x-kubernetes-action"], action, "{method} {path}");
            assert_eq!(
                op["x-kubernetes-group-version-kind"],
                json!({"group": "hipaa.dev", "kind": "HipaaNetwork", "version": "v1alpha1"})
            );
            assert_eq!(op["tags"], json!(["hipaaDev_v1alpha1"]));
        }
        // Shared parameters live on the path item, as on the real server.
        let item =
            &p["/apis/hipaa.dev/v1alpha1/namespaces/{namespace}/hipaanetworks/{name}/status"];
        let names: Vec<&str> = item["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["name", "namespace", "pretty"]);
        assert_eq!(
            item["parameters"][0]["schema"],
            json!({"type": "string", "uniqueItems": true})
        );
        assert!(
            item["get"].get("parameters").is_none(),
            "GET status has no own parameters"
        );
        let patch_params: Vec<&str> = item["patch"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            patch_params,
            ["dryRun", "fieldManager", "fieldValidation", "force"]
        );
        assert!(
            item["patch"]["requestBody"]["content"]["application/apply-patch+yaml"].is_object()
        );
        assert_eq!(
            item["patch"]["description"],
            "partially update status of the specified HipaaNetwork"
        );
        assert_eq!(p[base]["post"]["description"], "create a HipaaNetwork");
        // No /status path without the subresource; cluster-scoped has no namespace path.
        let doc2 = openapi_v3_group_version(&[crd(false, false)]);
        let keys: Vec<&String> = doc2["paths"].as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "/apis/hipaa.dev/v1alpha1/hipaanetworks",
                "/apis/hipaa.dev/v1alpha1/hipaanetworks/{name}"
            ]
        );
        // Every $ref in the document resolves inside it (explain needs a self-contained doc).
        fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
            match v {
                Value::Object(o) => o.iter().for_each(|(k, v)| {
                    if k == "$ref" {
                        out.push(v.as_str().unwrap())
                    } else {
                        refs(v, out)
                    }
                }),
                Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
                _ => {}
            }
        }
        let mut all = Vec::new();
        refs(&doc, &mut all);
        assert!(!all.is_empty());
        for r in all {
            assert!(
                doc.pointer(r.trim_start_matches('#')).is_some(),
                "dangling {r}"
            );
        }
    }

    #[test]
    fn explain_finds_schema_by_gvk() {
        // (resources, group, version, plural, expected kind, proof)
        let cases = [
            (
                vec![crd(true, true)],
                "hipaa.dev",
                "v1alpha1",
                "hipaanetworks",
                "HipaaNetwork",
                "namespaced CRD",
            ),
            (
                vec![crd(false, false)],
                "hipaa.dev",
                "v1alpha1",
                "hipaanetworks",
                "HipaaNetwork",
                "cluster-scoped CRD",
            ),
            (
                vec![builtin("", "Pod", "pods", true)],
                "",
                "v1",
                "pods",
                "Pod",
                "built-in without schema",
            ),
            (
                vec![builtin("apps", "Deployment", "deployments", true)],
                "apps",
                "v1",
                "deployments",
                "Deployment",
                "built-in group",
            ),
        ];
        for (resources, g, v, plural, kind, why) in cases {
            let doc = openapi_v3_group_version(&resources);
            let schema =
                explain_lookup(&doc, g, v, plural).unwrap_or_else(|| panic!("{why}: not found"));
            assert_eq!(
                schema["x-kubernetes-group-version-kind"],
                json!([{"group": g, "kind": kind, "version": v}]),
                "{why}"
            );
            // `kubectl explain <r>.metadata` follows the $ref and prints descriptions.
            let meta = resolve(&doc, &schema["properties"]["metadata"]);
            assert!(
                meta["description"]
                    .as_str()
                    .unwrap()
                    .starts_with("ObjectMeta is metadata"),
                "{why}"
            );
            assert!(
                meta["properties"]["name"]["description"]
                    .as_str()
                    .unwrap()
                    .contains("unique within a namespace")
            );
            assert_eq!(
                schema["properties"]["metadata"]["description"],
                OBJECT_METADATA_DESC
            );
            assert!(schema["properties"]["apiVersion"]["description"].is_string());
        }
        let doc = openapi_v3_group_version(&[builtin("", "Pod", "pods", true)]);
        let pod = explain_lookup(&doc, "", "v1", "pods").unwrap();
        assert_eq!(
            pod["x-kubernetes-preserve-unknown-fields"], true,
            "built-ins stay permissive"
        );
        assert!(
            explain_lookup(&doc, "", "v1", "services").is_none(),
            "unknown resource"
        );
    }

    #[test]
    fn v3_crd_schema_matches_apiextensions_builder() {
        let doc = openapi_v3_group_version(&[crd(true, true)]);
        let schemas = &doc["components"]["schemas"];
        let s = &schemas["dev.hipaa.v1alpha1.HipaaNetwork"];
        // (pointer into the kind schema, expected value, what it proves)
        let cases = [
            (
                "/description",
                json!("HipaaNetwork is a HIPAA-compliant VPC."),
                "root description kept",
            ),
            (
                "/properties/metadata/$ref",
                json!("#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"),
                "metadata is a $ref",
            ),
            (
                "/properties/kind/type",
                json!("string"),
                "TypeMeta kind added",
            ),
            (
                "/properties/spec/properties/port/anyOf",
                json!([{"type": "integer"}, {"type": "string"}]),
                "int-or-string unfolded",
            ),
            (
                "/properties/spec/properties/region/default",
                json!("us-east-1"),
                "defaults kept in v3",
            ),
            (
                "/properties/spec/x-kubernetes-validations/0/rule",
                json!("self.cidr != ''"),
                "CEL rules kept",
            ),
            (
                "/properties/status/properties/vpcId/nullable",
                json!(true),
                "nullable kept in v3",
            ),
            (
                "/properties/status/x-kubernetes-preserve-unknown-fields",
                json!(true),
                "preserve-unknown kept",
            ),
        ];
        for (ptr, want, why) in cases {
            assert_eq!(s.pointer(ptr), Some(&want), "{why}");
        }
        assert!(
            s.pointer("/properties/spec/properties/cidr/example")
                .is_none(),
            "example is not structural"
        );
        let list = &schemas["dev.hipaa.v1alpha1.HipaaNetworkList"];
        assert_eq!(
            list["x-kubernetes-group-version-kind"][0]["kind"],
            "HipaaNetworkList"
        );
        assert_eq!(list["required"], json!(["items"]));
        assert_eq!(
            list["properties"]["items"]["items"]["$ref"],
            "#/components/schemas/dev.hipaa.v1alpha1.HipaaNetwork"
        );
        assert_eq!(doc["openapi"], "3.0.0");
    }

    #[test]
    fn embedded_resources_get_type_meta() {
        let mut r = crd(true, false);
        r.schema = Some(json!({"type": "object", "properties": {
            "template": {"type": "object", "x-kubernetes-embedded-resource": true, "x-kubernetes-preserve-unknown-fields": true},
            "typed": {"type": "object", "x-kubernetes-embedded-resource": true, "required": ["kind"], "properties": {"spec": {"type": "object"}}},
        }}));
        let v3 = openapi_v3_group_version(std::slice::from_ref(&r));
        let t = &v3["components"]["schemas"]["dev.hipaa.v1alpha1.HipaaNetwork"]["properties"];
        assert_eq!(
            t["typed"]["required"],
            json!(["kind", "apiVersion"]),
            "no duplicates, apiVersion appended"
        );
        assert!(t["typed"]["properties"]["metadata"]["$ref"].is_string());
        assert!(
            t["template"]["properties"]["apiVersion"].is_object(),
            "v3 fills even preserve-unknown nodes"
        );
        let v2 = openapi_v2(&[r]);
        let t2 = &v2["definitions"]["dev.hipaa.v1alpha1.HipaaNetwork"]["properties"];
        assert!(
            t2["template"].get("properties").is_none(),
            "v2 skips preserve-unknown embedded nodes"
        );
        assert_eq!(
            t2["typed"]["properties"]["metadata"]["$ref"],
            "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
        );
    }

    #[test]
    fn v2_schema_conversion() {
        // (input schema, pointer, expected (None = absent), what ToStructuralOpenAPIV2 / PruneDefaults does)
        let cases: Vec<(Value, &str, Option<Value>, &str)> = vec![
            (
                json!({"type": "object", "properties": {"a": {"type": "string", "nullable": true}}}),
                "/properties/a",
                Some(json!({})),
                "nullable drops type and nullable",
            ),
            (
                json!({"type": "object", "required": ["a", "c"], "properties": {"a": {"type": "string", "nullable": true}, "c": {"type": "string"}}}),
                "/required",
                Some(json!(["c"])),
                "nullable properties leave required",
            ),
            (
                json!({"type": "object", "properties": {"o": {"type": "object", "nullable": true, "properties": {"x": {"type": "string"}}}}}),
                "/properties/o/properties",
                None,
                "nullable objects lose properties",
            ),
            (
                json!({"type": "object", "properties": {"p": {"x-kubernetes-int-or-string": true}}}),
                "/properties/p/anyOf",
                None,
                "anyOf (even unfolded int-or-string) dropped",
            ),
            (
                json!({"type": "object", "properties": {"p": {"type": "string", "allOf": [{"minLength": 1}], "oneOf": [{"maxLength": 3}], "not": {"pattern": "x"}}}}),
                "/properties/p",
                Some(json!({"type": "string"})),
                "allOf/oneOf/not dropped",
            ),
            (
                json!({"type": "object", "properties": {"s": {"type": "object", "x-kubernetes-preserve-unknown-fields": true, "properties": {"k": {"type": "string"}}}}}),
                "/properties/s",
                Some(json!({"x-kubernetes-preserve-unknown-fields": true})),
                "preserve-unknown: no type, no properties",
            ),
            (
                json!({"type": "object", "properties": {"l": {"type": "array", "x-kubernetes-preserve-unknown-fields": true, "items": {"type": "string"}}}}),
                "/properties/l",
                Some(json!({"x-kubernetes-preserve-unknown-fields": true})),
                "array without items loses type",
            ),
            (
                json!({"type": "object", "properties": {"r": {"type": "string", "default": "x", "maxLength": 5}}}),
                "/properties/r",
                Some(json!({"type": "string", "maxLength": 5})),
                "defaults pruned, value validation kept",
            ),
            (
                json!({"type": "object", "properties": {"v": {"type": "string", "x-kubernetes-validations": [{"rule": "true"}]}}}),
                "/properties/v/x-kubernetes-validations/0/rule",
                Some(json!("true")),
                "CEL rules are vendor extensions; apiextensions keeps them",
            ),
            (
                json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true, "properties": {"a": {"type": "string"}}}),
                "",
                Some(
                    json!({"type": "object", "x-kubernetes-group-version-kind": [{"group": "hipaa.dev", "kind": "HipaaNetwork", "version": "v1alpha1"}]}),
                ),
                "root preserve-unknown: bare object",
            ),
        ];
        for (schema, ptr, want, why) in cases {
            let mut r = crd(true, true);
            r.schema = Some(schema);
            let doc = openapi_v2(&[r]);
            let def = &doc["definitions"]["dev.hipaa.v1alpha1.HipaaNetwork"];
            assert_eq!(def.pointer(ptr).cloned(), want, "{why}");
        }
    }

    #[test]
    fn v2_document_shape() {
        let doc = openapi_v2(&[
            crd(true, true),
            builtin("", "Namespace", "namespaces", false),
        ]);
        assert_eq!(doc["swagger"], "2.0");
        assert!(supports_query_param_v2(
            &doc,
            ("hipaa.dev", "v1alpha1", "HipaaNetwork"),
            "fieldValidation"
        ));
        assert!(supports_query_param_v2(
            &doc,
            ("", "v1", "Namespace"),
            "fieldValidation"
        ));
        assert!(!supports_query_param_v2(
            &doc,
            ("", "v1", "Pod"),
            "fieldValidation"
        ));
        let ns = &doc["definitions"]["io.k8s.api.core.v1.Namespace"];
        assert_eq!(ns["type"], "object");
        assert!(
            ns.get("properties").is_none(),
            "built-in v2 schema is a bare object"
        );
        assert_eq!(
            ns["x-kubernetes-group-version-kind"][0]["kind"],
            "Namespace"
        );
        let patch = &doc["paths"]["/apis/hipaa.dev/v1alpha1/namespaces/{namespace}/hipaanetworks/{name}"]
            ["patch"];
        assert_eq!(
            patch["parameters"][0],
            json!({"name": "body", "in": "body", "required": true, "schema": {"$ref": "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.Patch"}})
        );
        assert_eq!(
            patch["responses"]["200"]["schema"]["$ref"],
            "#/definitions/dev.hipaa.v1alpha1.HipaaNetwork"
        );
        assert!(
            patch["consumes"]
                .as_array()
                .unwrap()
                .contains(&json!("application/merge-patch+json"))
        );
        assert!(doc["definitions"]["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]["properties"]["annotations"]["additionalProperties"].get("default").is_none(), "defaults pruned everywhere in v2");
    }
}
