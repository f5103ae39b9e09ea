//! Label and field selectors (apimachinery `pkg/labels/selector.go`, `pkg/fields/selector.go`).
