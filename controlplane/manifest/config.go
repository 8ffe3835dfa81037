package manifest

import (
	"maps"
	"slices"
)

// Config is an immutable set of objects keyed by Key. Apply and Delete
// return new Configs, so a Config handed to another goroutine never changes.
type Config struct {
	objs map[Key]Object
}

// NewConfig builds a Config from objs; a later object with the same Key
// replaces an earlier one.
func NewConfig(objs []Object) *Config {
	c := &Config{objs: make(map[Key]Object, len(objs))}
	for _, o := range objs {
		c.objs[o.Key] = o
	}
	return c
}

// Objects returns the objects sorted by Key.
func (c *Config) Objects() []Object {
	if c == nil {
		return nil
	}
	keys := slices.SortedFunc(maps.Keys(c.objs), compareKeys)
	out := make([]Object, len(keys))
	for i, k := range keys {
		out[i] = c.objs[k]
	}
	return out
}

// Get returns the object with key k.
func (c *Config) Get(k Key) (Object, bool) {
	if c == nil {
		return Object{}, false
	}
	o, ok := c.objs[k]
	return o, ok
}

// Len is the number of objects.
func (c *Config) Len() int {
	if c == nil {
		return 0
	}
	return len(c.objs)
}

// Kind returns the objects of one API version and kind, sorted by name.
func (c *Config) Kind(apiVersion, kind string) []Object {
	var out []Object
	for _, o := range c.Objects() {
		if o.Key.APIVersion == apiVersion && o.Key.Kind == kind {
			out = append(out, o)
		}
	}
	return out
}

// Apply returns a new Config with objs upserted.
func (c *Config) Apply(objs []Object) *Config {
	n := &Config{objs: make(map[Key]Object, c.Len()+len(objs))}
	if c != nil {
		maps.Copy(n.objs, c.objs)
	}
	for _, o := range objs {
		n.objs[o.Key] = o
	}
	return n
}

// Delete returns a new Config without the objects of keys; unknown keys are
// ignored.
func (c *Config) Delete(keys []Key) *Config {
	n := &Config{objs: make(map[Key]Object, c.Len())}
	if c != nil {
		maps.Copy(n.objs, c.objs)
	}
	for _, k := range keys {
		delete(n.objs, k)
	}
	return n
}

func compareKeys(a, b Key) int {
	switch {
	case a.Less(b):
		return -1
	case b.Less(a):
		return 1
	}
	return 0
}
