// xml-tree (after the Dune paper's XML parse benchmark): parses generated XML documents into
// DOM trees of elements, attributes and strings, keeping the last few documents alive.
//
// A seeded generator writes each document (nested elements from a small vocabulary, 0..3
// attributes each, text in leaves) into an input buffer outside the collected heap, reused
// like a file-reading buffer; a small tokenizer parses it into a DOM in which every element,
// attribute, name, value and text is its own object, as in a naive DOM builder. A document
// dies K documents later. Elements and attributes are typed (GC_malloc_explicitly_typed:
// their cached hashes are not pointers); strings are atomic.
//
// Verification: the generator also counts what it wrote (elements, attributes, text bytes)
// and folds every name, value and text into a checksum in document order. Each DOM is walked
// right after parsing and again when it dies K documents later, and must reproduce all of
// it, every cached hash included.
#include <gc.h>
#include <gc/gc_typed.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "gcwl.h"

namespace {

using gcwl::Context;

struct Attr {
  Attr *next;
  char *name, *value;
  uint64_t hash;  // of name and value
};

struct Element {
  Element *first_child, *last_child, *next_sibling;
  Attr *attrs;
  char *name, *text;
  uint64_t name_hash;
  uint64_t n_children;
};

struct Params {
  int64_t elements, window, documents, max_depth;
};

Params params(const Context &ctx) {
  if (ctx.size == gcwl::Size::kQuick) return {4000, 4, 16, 8};
  return {40000, 8, 50, 10};
}

const char *const kNames[] = {"item", "entry", "node", "record", "title", "author", "price", "date",
                              "section", "para", "list", "ref", "meta", "link", "note", "value",
                              "group", "field", "data", "row", "col", "head", "body", "span"};
const char *const kAttrNames[] = {"id", "type", "lang", "class", "ref", "key", "href", "unit"};

uint64_t hash_bytes(const char *s, size_t n) {  // FNV-1a
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; ++i) h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
  return h;
}

struct DocStats {
  uint64_t elements = 0, attrs = 0, text_bytes = 0, checksum = 0;
  uint64_t dom_bytes = 0;  // what the parser will allocate for this document's DOM
  uint64_t length = 0;     // of the document text (outside the collected heap)
};

// Writes one document into `out` (or only counts, when out is null). Deterministic per seed.
class Generator {
 public:
  Generator(uint64_t seed, const Params &p, std::string *out) : rng_(seed), p_(p), out_(out) {
    if (out_) out_->clear();
  }

  DocStats run() {
    put("<?xml version=\"1.0\"?>");
    open_tag("doc", 0);
    put(">");
    while (st_.elements < uint64_t(p_.elements)) element(1);
    put("</doc>");
    return st_;
  }

 private:
  void put(const char *s, size_t n) {
    if (out_) out_->append(s, n);
    st_.length += n;
  }
  void put(const char *s) { put(s, strlen(s)); }

  // n characters of `alphabet` (at most 12) from one random number.
  void random_chars(char *out, size_t n, const char *alphabet, unsigned radix) {
    uint64_t r = rng_.next();
    for (size_t k = 0; k < n; ++k, r /= radix) out[k] = alphabet[r % radix];
  }

  void string_node(const char *s, size_t n) {  // a name, value or text the DOM will hold
    st_.checksum = gcwl::mix64(st_.checksum, hash_bytes(s, n));
    st_.dom_bytes += n + 1;
  }

  void open_tag(const char *name, int nattrs) {
    put("<");
    put(name);
    ++st_.elements;
    st_.dom_bytes += sizeof(Element);
    string_node(name, strlen(name));
    for (int a = 0; a < nattrs; ++a) {
      const char *an = kAttrNames[rng_.below(std::size(kAttrNames))];
      char value[16];
      size_t n = 3 + rng_.below(10);
      random_chars(value, n, "abcdefghijklmnopqrstuvwxyz0123456789", 36);
      put(" ");
      put(an);
      put("=\"");
      put(value, n);
      put("\"");
      ++st_.attrs;
      st_.dom_bytes += sizeof(Attr);
      string_node(an, strlen(an));
      string_node(value, n);
    }
  }

  void element(int depth) {
    const char *name = kNames[rng_.below(std::size(kNames))];
    open_tag(name, int(rng_.below(4)));
    uint64_t children = depth < p_.max_depth ? rng_.below(6) : 0;
    if (children == 0 && rng_.below(4) == 0) {
      put("/>");
      return;
    }
    put(">");
    if (children == 0) {
      char text[96];
      size_t n = 0;
      for (uint64_t w = 1 + rng_.below(8); w > 0; --w) {
        size_t l = 2 + rng_.below(8);
        random_chars(text + n, l, "abcdefghijklmnopqrstuvwxyz", 26);
        n += l;
        if (w > 1) text[n++] = ' ';
      }
      put(text, n);
      st_.text_bytes += n;
      string_node(text, n);
    }
    for (uint64_t c = 0; c < children && st_.elements < uint64_t(p_.elements); ++c) element(depth + 1);
    put("</");
    put(name);
    put(">");
  }

  gcwl::Rng rng_;
  const Params &p_;
  std::string *out_;
  DocStats st_;
};

uint64_t doc_seed(uint64_t seed, int64_t i) { return gcwl::mix64(seed, uint64_t(i)); }

// Peak of: the window's DOMs, the DOM being built, and the window array.
uint64_t live_bytes(const Context &ctx) {
  Params p = params(ctx);
  std::vector<uint64_t> dom(size_t(p.documents));
  uint64_t peak = 0;
  for (int64_t i = 0; i < p.documents; ++i) {
    dom[size_t(i)] = Generator(doc_seed(ctx.seed, i), p, nullptr).run().dom_bytes;
    uint64_t live = 0;
    for (int64_t j = std::max<int64_t>(0, i - p.window); j <= i; ++j) live += dom[size_t(j)];
    peak = std::max(peak, live);
  }
  return peak + uint64_t(p.window) * (sizeof(void *) + sizeof(DocStats));
}

class Parser {
 public:
  Parser(Context &ctx, GC_descr element, GC_descr attr) : ctx_(ctx), element_(element), attr_(attr) {}

  // Returns the document element, or null (through ctx.fail) if the text is malformed.
  Element *parse(const char *text, size_t len) {
    begin_ = s_ = text;
    end_ = text + len;
    if (len < 2 || memcmp(s_, "<?", 2) != 0) return error("no XML declaration");
    while (s_ < end_ && *s_ != '>') ++s_;
    ++s_;
    Element *stack[64];
    int depth = 0;
    Element *root = nullptr;
    while (s_ < end_) {
      if (*s_ != '<') {  // text: belongs to the open element
        const char *t = s_;
        while (s_ < end_ && *s_ != '<') ++s_;
        if (!depth) return error("text outside the document element");
        stack[depth - 1]->text = copy(t, size_t(s_ - t));
        continue;
      }
      ++s_;
      if (s_ < end_ && *s_ == '/') {  // closing tag
        ++s_;
        size_t n = name_length();
        if (!depth || strlen(stack[depth - 1]->name) != n || memcmp(stack[depth - 1]->name, s_, n))
          return error("mismatched closing tag");
        s_ += n;
        if (s_ >= end_ || *s_++ != '>') return error("unterminated closing tag");
        --depth;
        continue;
      }
      Element *e = open_element();
      if (!e) return nullptr;
      if (depth) append(stack[depth - 1], e);
      else if (root) return error("second document element");
      else root = e;
      if (s_ < end_ && *s_ == '/') {  // <name .../>
        s_ += 2;
        continue;
      }
      ++s_;  // '>'
      if (depth == int(std::size(stack))) return error("elements nested too deeply");
      stack[depth++] = e;
    }
    if (depth || !root) return error("document ends inside an element");
    return root;
  }

 private:
  Element *error(const char *what) {
    ctx_.fail("xml parse: %s at offset %td", what, s_ - begin_);
    return nullptr;
  }

  size_t name_length() const {
    const char *p = s_;
    while (p < end_ && (*p >= 'a' && *p <= 'z')) ++p;
    return size_t(p - s_);
  }

  char *copy(const char *s, size_t n) {
    auto *c = static_cast<char *>(GC_MALLOC_ATOMIC(n + 1));
    memcpy(c, s, n);
    c[n] = 0;
    return c;
  }

  static void append(Element *parent, Element *child) {
    if (parent->last_child) parent->last_child->next_sibling = child;
    else parent->first_child = child;
    parent->last_child = child;
    ++parent->n_children;
  }

  // At the element's name; leaves s_ at its '>' or "/>".
  Element *open_element() {
    size_t n = name_length();
    if (!n) return error("tag without a name");
    auto *e = static_cast<Element *>(GC_malloc_explicitly_typed(sizeof(Element), element_));
    e->name = copy(s_, n);
    e->name_hash = hash_bytes(s_, n);
    s_ += n;
    Attr **tail = &e->attrs;
    for (;;) {
      while (s_ < end_ && *s_ == ' ') ++s_;
      if (s_ >= end_) return error("unterminated tag");
      if (*s_ == '>' || (*s_ == '/' && s_ + 1 < end_ && s_[1] == '>')) return e;
      size_t an = name_length();
      if (!an || s_ + an + 2 > end_ || s_[an] != '=' || s_[an + 1] != '"')
        return error("malformed attribute");
      const char *v = s_ + an + 2, *ve = v;
      while (ve < end_ && *ve != '"') ++ve;
      if (ve >= end_) return error("unterminated attribute value");
      auto *a = static_cast<Attr *>(GC_malloc_explicitly_typed(sizeof(Attr), attr_));
      a->name = copy(s_, an);
      a->value = copy(v, size_t(ve - v));
      a->hash = gcwl::mix64(hash_bytes(s_, an), hash_bytes(v, size_t(ve - v)));
      *tail = a;
      tail = &a->next;
      s_ = ve + 1;
    }
  }

  Context &ctx_;
  GC_descr element_, attr_;
  const char *begin_ = nullptr, *s_ = nullptr, *end_ = nullptr;
};

// Walks a DOM in document order, recomputing the generator's counts and checksum; frees it
// on the way when `release` (the baselines).
struct Walk {
  DocStats got;
  bool intact = true;

  void string_node(const char *s) {
    if (!s) {
      intact = false;
      return;
    }
    got.checksum = gcwl::mix64(got.checksum, hash_bytes(s, strlen(s)));
  }

  void element(Element *e, bool release) {
    ++got.elements;
    if (!e->name || e->name_hash != hash_bytes(e->name, strlen(e->name))) intact = false;
    string_node(e->name);
    for (Attr *a = e->attrs; a;) {
      ++got.attrs;
      string_node(a->name);
      string_node(a->value);
      if (!a->name || !a->value ||
          a->hash != gcwl::mix64(hash_bytes(a->name, strlen(a->name)), hash_bytes(a->value, strlen(a->value))))
        intact = false;
      Attr *next = a->next;
      if (release) {
        WL_FREE(a->name);
        WL_FREE(a->value);
        WL_FREE(a);
      }
      a = next;
    }
    if (e->text) {
      got.text_bytes += strlen(e->text);
      string_node(e->text);
    }
    uint64_t children = 0;
    for (Element *c = e->first_child; c && intact; ++children) {
      Element *next = c->next_sibling;
      element(c, release);
      c = next;
    }
    if (children != e->n_children) intact = false;
    if (release) {
      WL_FREE(e->name);
      WL_FREE(e->text);
      WL_FREE(e);
    }
  }
};

bool verify_doc(Context &ctx, Element *root, const DocStats &want, int64_t doc, const char *when,
                bool release) {
  Walk w;
  w.element(root, release);
  if (w.intact && w.got.elements == want.elements && w.got.attrs == want.attrs &&
      w.got.text_bytes == want.text_bytes && w.got.checksum == want.checksum)
    return true;
  return ctx.fail("document %lld %s: %s%llu elements, %llu attributes, %llu text bytes, "
                  "checksum %#llx; expected %llu, %llu, %llu, %#llx",
                  (long long)doc, when, w.intact ? "" : "damaged nodes; ",
                  (unsigned long long)w.got.elements, (unsigned long long)w.got.attrs,
                  (unsigned long long)w.got.text_bytes, (unsigned long long)w.got.checksum,
                  (unsigned long long)want.elements, (unsigned long long)want.attrs,
                  (unsigned long long)want.text_bytes, (unsigned long long)want.checksum);
}

struct Slot {  // the window of live documents: conservatively scanned
  Element *root;
  DocStats *want;
};

bool run(Context &ctx) {
  Params p = params(ctx);
  ctx.param("elements_per_document", p.elements);
  ctx.param("window", p.window);
  ctx.param("documents", p.documents);
  ctx.param("max_depth", p.max_depth);

  GC_word ebits[GC_BITMAP_SIZE(Element)] = {0};
  for (size_t f : {GC_WORD_OFFSET(Element, first_child), GC_WORD_OFFSET(Element, last_child),
                   GC_WORD_OFFSET(Element, next_sibling), GC_WORD_OFFSET(Element, attrs),
                   GC_WORD_OFFSET(Element, name), GC_WORD_OFFSET(Element, text)})
    GC_set_bit(ebits, f);
  GC_word abits[GC_BITMAP_SIZE(Attr)] = {0};
  for (size_t f : {GC_WORD_OFFSET(Attr, next), GC_WORD_OFFSET(Attr, name), GC_WORD_OFFSET(Attr, value)})
    GC_set_bit(abits, f);
  Parser parser(ctx, GC_make_descriptor(ebits, GC_WORD_LEN(Element)),
                GC_make_descriptor(abits, GC_WORD_LEN(Attr)));

  auto *window = static_cast<Slot *>(GC_MALLOC(sizeof(Slot) * size_t(p.window)));
  std::string input;
  uint64_t sum = 0, text_total = 0;
  for (int64_t i = 0; i < p.documents; ++i) {
    DocStats want = Generator(doc_seed(ctx.seed, i), p, &input).run();
    Element *root = parser.parse(input.data(), input.size());
    if (!root || !verify_doc(ctx, root, want, i, "after parsing", false)) return false;
    text_total += want.length;
    sum = gcwl::mix64(sum, want.checksum);

    Slot &s = window[i % p.window];
    if (s.root) {
      if (!verify_doc(ctx, s.root, *s.want, i - p.window, "when dropped", true)) return false;
      WL_FREE(s.want);
    }
    s.root = root;
    s.want = static_cast<DocStats *>(GC_MALLOC_ATOMIC(sizeof(DocStats)));
    *s.want = want;
    if (ctx.inject_fault && i == p.documents / 2)
      gcwl::clobber_live_object(window[(i + 1) % p.window].root->first_child, sizeof(Element));
  }
  for (int64_t i = std::max<int64_t>(0, p.documents - p.window); i < p.documents; ++i) {
    Slot &s = window[i % p.window];
    if (!verify_doc(ctx, s.root, *s.want, i, "at the end", true)) return false;
    WL_FREE(s.want);
  }
  WL_FREE(window);
  ctx.param("text_bytes_parsed", int64_t(text_total));
  ctx.set_checksum(sum);
  return true;
}

}  // namespace

int main(int argc, char **argv) {
  static const gcwl::Workload w{"xml-tree", "xml-tree: parse generated XML into DOM trees, keep the last few",
                                false, live_bytes, run};
  return gcwl::main_with(w, argc, argv);
}
