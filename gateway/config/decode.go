package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"github.com/edgegate/edgegate/drivers"
	"github.com/edgegate/edgegate/gateway/textutil"
	"gopkg.in/yaml.v3"
)

// parser decodes a yaml.v3 node tree into a Config, field by field, keyed
// by the yaml struct tags, and remembers where each value was so that the
// checks that follow (validate.go) can point at it.
type parser struct {
	file string
	errs Errors
	// at maps the path of every key present with a non-null value
	// ("relays[2].pin") to its value node.
	at map[string]*yaml.Node
	// bad holds the paths whose value could not be decoded; checks skip
	// them, so that one mistake gives one message.
	bad map[string]bool
}

func newParser(file string) *parser {
	return &parser{file: file, at: map[string]*yaml.Node{}, bad: map[string]bool{}}
}

func (p *parser) errorf(line int, field, format string, args ...any) {
	p.errs = append(p.errs, &Error{File: p.file, Line: line, Field: field, Problem: fmt.Sprintf(format, args...)})
}

// present reports whether path was given a non-null value in the file.
func (p *parser) present(path string) bool { return p.at[path] != nil }

// line is the line of path's value, or else fallback.
func (p *parser) line(path string, fallback int) int {
	if n := p.at[path]; n != nil {
		return n.Line
	}
	return fallback
}

var yamlLineErr = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func (p *parser) parse(data []byte) *Config {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			p.errorf(1, "", "the file is empty; want a mapping with any of: %s", strings.Join(knownKeys(reflect.TypeFor[Config]()), ", "))
			return nil
		}
		p.syntaxError(err, data)
		return nil
	}
	for { // only empty documents (a trailing ---) may follow
		var extra yaml.Node
		err := dec.Decode(&extra)
		if err != nil {
			if !errors.Is(err, io.EOF) {
				p.syntaxError(err, data)
			}
			break
		}
		if !emptyDocument(&extra) {
			p.errorf(extra.Line, "", "a second YAML document (after ---); put everything in one document")
			break
		}
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind != yaml.MappingNode {
		if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
			p.errorf(root.Line, "", "the file has no settings; want a mapping with any of: %s", strings.Join(knownKeys(reflect.TypeFor[Config]()), ", "))
		} else {
			p.errorf(root.Line, "", "want a mapping (key: value lines) at the top level with any of: %s; got %s", strings.Join(knownKeys(reflect.TypeFor[Config]()), ", "), describe(root))
		}
		return nil
	}
	cfg := Default()
	p.decode(root, reflect.ValueOf(cfg).Elem(), "")
	p.applyLateDefaults(cfg)
	p.validate(cfg)
	return cfg
}

// parserHints are the errors of yaml.v3's parser (as opposed to its
// scanner): they give the 0-based line where the enclosing collection
// starts, hence the +1, rather than the line of the problem.
var parserHints = map[string]string{
	"did not find expected key":              "in the mapping that starts here; check the indentation of the lines that follow",
	"did not find expected '-' indicator":    "in the list that starts here; check the indentation of the lines that follow",
	"did not find expected ',' or ']'":       "in the [ ] list that starts here; is a ] or a comma missing?",
	"did not find expected ',' or '}'":       "in the { } mapping that starts here; is a } or a comma missing?",
	"did not find expected node content":     "",
	"did not find expected <document start>": "",
	"did not find expected <stream-start>":   "",
	"found undefined tag handle":             "",
	"found duplicate %YAML directive":        "",
	"found incompatible YAML document":       "",
	"found duplicate %TAG directive":         "",
}

var (
	unknownAnchor = regexp.MustCompile(`^unknown anchor '(.*)' referenced$`)
	cannotDecode  = regexp.MustCompile("^cannot decode \\S+ `(.*)` as a")
)

// emptyDocument reports whether doc has no content (a trailing "---").
func emptyDocument(doc *yaml.Node) bool {
	if len(doc.Content) == 0 {
		return true
	}
	n := doc.Content[0]
	return len(doc.Content) == 1 && n.Kind == yaml.ScalarNode && n.Tag == "!!null" && n.Value == ""
}

func (p *parser) syntaxError(err error, data []byte) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 1
	if m := yamlLineErr.FindStringSubmatch(err.Error()); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
		if _, parserErr := parserHints[msg]; parserErr {
			line++
		}
	} else if m := unknownAnchor.FindStringSubmatch(msg); m != nil {
		line = lineOf(data, "*"+m[1])
	} else if m := cannotDecode.FindStringSubmatch(msg); m != nil {
		line = lineOf(data, m[1])
	}
	if h := parserHints[msg]; h != "" {
		msg += " " + h
	} else if strings.HasPrefix(lineText(data, line), "\t") || strings.Contains(msg, "tab character") {
		msg += "; indent with spaces, not tabs"
	}
	p.errorf(line, "", "YAML syntax error: %s", msg)
}

// lineText is line n (1-based) of data.
func lineText(data []byte, n int) string {
	for i := 1; i < n; i++ {
		j := bytes.IndexByte(data, '\n')
		if j < 0 {
			return ""
		}
		data = data[j+1:]
	}
	if j := bytes.IndexByte(data, '\n'); j >= 0 {
		data = data[:j]
	}
	return string(data)
}

// lineOf is the line of the first occurrence of s in data, or 1.
func lineOf(data []byte, s string) int {
	i := bytes.Index(data, []byte(s))
	if i < 0 || s == "" {
		return 1
	}
	return 1 + bytes.Count(data[:i], []byte("\n"))
}

var (
	durationType = reflect.TypeFor[Duration]()
	byteSizeType = reflect.TypeFor[ByteSize]()
)

// scalarTags are the tags of the YAML 1.2 core schema (and timestamps,
// which yaml.v3 also resolves) that a scalar may carry.
var scalarTags = map[string]bool{"!!str": true, "!!int": true, "!!float": true, "!!bool": true, "!!null": true, "!!timestamp": true}

// decode stores the value of n in v; path names v in messages. n is never
// a null scalar (the caller leaves the default in place for those).
func (p *parser) decode(n *yaml.Node, v reflect.Value, path string) {
	fail := func(format string, args ...any) {
		p.bad[path] = true
		p.errorf(n.Line, path, format, args...)
	}
	if n.Kind == yaml.AliasNode {
		fail("aliases (*%s) are not supported; write the value out in full", n.Value)
		return
	}
	switch n.Kind {
	case yaml.ScalarNode:
		if !scalarTags[n.Tag] {
			fail("unsupported tag %s; remove it", n.Tag)
			return
		}
	case yaml.MappingNode:
		if n.Tag != "!!map" {
			fail("unsupported tag %s; remove it", n.Tag)
			return
		}
	case yaml.SequenceNode:
		if n.Tag != "!!seq" {
			fail("unsupported tag %s; remove it", n.Tag)
			return
		}
	default:
		fail("unexpected YAML node")
		return
	}

	switch t := v.Type(); {
	case t == durationType:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!str" {
			fail("want a duration like %q, got %s", "15s", describe(n))
			return
		}
		d, err := ParseDuration(n.Value)
		if err != nil {
			fail("%v", err)
			return
		}
		v.SetInt(int64(d))
	case t == byteSizeType:
		if n.Kind != yaml.ScalarNode || (n.Tag != "!!str" && n.Tag != "!!int") {
			fail("want a size like %q or %q, got %s", "64MiB", "1000", describe(n))
			return
		}
		var b ByteSize
		var err error
		if n.Tag == "!!int" {
			var i int64
			if err = n.Decode(&i); err != nil {
				fail("want a size like %q or %q, got %s", "64MiB", "1000", describe(n))
				return
			}
			b = ByteSize(i)
		} else if b, err = ParseByteSize(n.Value); err != nil {
			fail("%v", err)
			return
		}
		v.SetInt(int64(b))
	case t.Kind() == reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
			fail("want true or false, got %s", describe(n))
			return
		}
		var b bool
		if err := n.Decode(&b); err != nil {
			fail("want true or false, got %s", describe(n))
			return
		}
		v.SetBool(b)
	case t.Kind() == reflect.Int:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
			fail("want an integer, got %s", describe(n))
			return
		}
		var i int64
		if err := n.Decode(&i); err != nil || v.OverflowInt(i) {
			fail("%s is out of range", n.Value)
			return
		}
		v.SetInt(i)
	case t.Kind() == reflect.Float64:
		if n.Kind != yaml.ScalarNode || (n.Tag != "!!int" && n.Tag != "!!float") {
			fail("want a number, got %s", describe(n))
			return
		}
		var f float64
		if err := n.Decode(&f); err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			fail("want a finite number, got %s", n.Value)
			return
		}
		v.SetFloat(f)
	case t.Kind() == reflect.String:
		if n.Kind != yaml.ScalarNode {
			fail("want a string, got %s", describe(n))
			return
		}
		v.SetString(n.Value)
	case t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.Struct:
		if n.Kind != yaml.MappingNode {
			fail("want a mapping, got %s", describe(n))
			return
		}
		nv := newValue(t.Elem())
		p.decodeStruct(n, nv, path)
		v.Set(nv.Addr())
	case t.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			fail("want a list (one \"- item\" per line, or [a, b]), got %s", describe(n))
			return
		}
		s := reflect.MakeSlice(t, 0, len(n.Content))
		for i, item := range n.Content {
			ipath := fmt.Sprintf("%s[%d]", path, i)
			ev := newValue(t.Elem())
			if t.Elem().Kind() == reflect.Struct {
				if f := ev.FieldByName("Line"); f.IsValid() {
					f.SetInt(int64(item.Line))
				}
			}
			switch {
			case item.Kind == yaml.ScalarNode && item.Tag == "!!null":
				p.bad[ipath] = true
				p.errorf(item.Line, ipath, "empty list item; remove it or fill it in")
			default:
				p.at[ipath] = item
				p.decode(item, ev, ipath)
			}
			s = reflect.Append(s, ev)
		}
		v.Set(s)
	case t.Kind() == reflect.Struct:
		if n.Kind != yaml.MappingNode {
			fail("want a mapping, got %s", describe(n))
			return
		}
		p.decodeStruct(n, v, path)
	default:
		panic("config: no decoder for " + t.String())
	}
}

// decodeStruct decodes the mapping n into the struct v, whose defaults are
// already in place.
func (p *parser) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	t := v.Type()
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			p.errorf(k.Line, path, "a key must be a plain name, got %s", describe(k))
			continue
		}
		kpath := join(path, k.Value)
		if first, dup := seen[k.Value]; dup {
			p.bad[kpath] = true
			p.errorf(k.Line, kpath, "duplicate key (first at line %d); keep only one", first)
			continue
		}
		seen[k.Value] = k.Line
		f, ok := fieldByTag(t, k.Value)
		if !ok {
			p.unknownField(k, t, kpath)
			continue
		}
		if val.Kind == yaml.ScalarNode && val.Tag == "!!null" {
			continue // key: with no value keeps the default
		}
		p.at[kpath] = val
		p.decode(val, v.FieldByIndex(f.Index), kpath)
	}
}

func (p *parser) unknownField(k *yaml.Node, t reflect.Type, path string) {
	p.bad[path] = true
	switch {
	case k.Value == "<<":
		// The item lacks what the merge would have brought: one message is enough.
		p.bad[strings.TrimSuffix(path, ".<<")] = true
		p.errorf(k.Line, path, "merge keys (<<) are not supported; write the keys out in full")
		return
	case k.Value == "interlock":
		p.errorf(k.Line, path, "only relays can be in an interlock group")
		return
	}
	known := knownKeys(t)
	hint := ""
	if s := closest(k.Value, known); s != "" {
		hint = fmt.Sprintf("; did you mean %s?", s)
	}
	p.errorf(k.Line, path, "unknown field%s (known: %s)", hint, strings.Join(known, ", "))
}

// newValue returns an addressable zero value of t with the defaults of the
// list items and sections that have them.
func newValue(t reflect.Type) reflect.Value {
	v := reflect.New(t).Elem()
	switch t {
	case reflect.TypeFor[Relay]():
		v.Set(reflect.ValueOf(defaultRelay()))
	case reflect.TypeFor[Sensor]():
		v.Set(reflect.ValueOf(defaultSensor()))
	case reflect.TypeFor[Device]():
		v.Set(reflect.ValueOf(defaultDevice()))
	case reflect.TypeFor[Register]():
		v.Set(reflect.ValueOf(Register{Table: "input", Type: drivers.RegInt16, WordOrder: "big", Scale: 1}))
	case reflect.TypeFor[Channel]():
		v.Set(reflect.ValueOf(Channel{Scale: 1}))
	case reflect.TypeFor[Upstream]():
		v.Set(reflect.ValueOf(defaultUpstream()).Elem())
	case reflect.TypeFor[MQTT]():
		v.Set(reflect.ValueOf(defaultMQTT()).Elem())
	}
	return v
}

func fieldByTag(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		if tag := f.Tag.Get("yaml"); tag != "" && tag != "-" && tag == key {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// knownKeys lists the keys of struct t in declaration order.
func knownKeys(t reflect.Type) []string {
	var keys []string
	for i := range t.NumField() {
		if tag := t.Field(i).Tag.Get("yaml"); tag != "" && tag != "-" {
			keys = append(keys, tag)
		}
	}
	return keys
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// describe names what n is, for "want X, got Y".
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return "nothing"
		case "!!str":
			return strconv.Quote(clip(n.Value))
		default:
			return clip(n.Value)
		}
	}
	return "something else"
}

func clip(s string) string {
	if r := []rune(s); len(r) > 40 {
		return string(r[:37]) + "..."
	}
	return s
}

// closest returns the known key nearest to key, if it is a likely typo.
func closest(key string, known []string) string {
	best, bestD := "", 3
	for _, k := range known {
		if d := textutil.EditDistance(strings.ToLower(key), k); d < bestD {
			best, bestD = k, d
		}
	}
	if bestD > 1 && len(key) < 4 {
		return ""
	}
	return best
}
