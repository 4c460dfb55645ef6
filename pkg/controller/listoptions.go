package controller

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
)

// The server-side field selectors every watch of reroll's carries.

// ignoreNamespaces returns the list-options tweak that excludes namespaces,
// server-side, from a watch of a namespaced resource.
func ignoreNamespaces(namespaces []string) func(*metav1.ListOptions) {
	return func(lo *metav1.ListOptions) {
		lo.FieldSelector = excludeField("metadata.namespace", namespaces)
	}
}

// excludeField returns the field selector "field!=v1,field!=v2,...", or ""
// for no values.
func excludeField(field string, values []string) string {
	selectors := make([]fields.Selector, len(values))
	for i, v := range values {
		selectors[i] = fields.OneTermNotEqualSelector(field, v)
	}
	if len(selectors) == 0 {
		return ""
	}
	return fields.AndSelectors(selectors...).String()
}
