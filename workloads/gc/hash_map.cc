// hash-map (after the Dune paper's HashMap): a chained hash table under a sliding window of
// keys. Step i inserts key(i) with a value blob of 16..64 bytes, erases key(i - N) once N
// keys are in, and looks up a random key of the window. The table starts small and doubles
// at load factor 1, so old bucket arrays die along the way.
//
// Entries are typed (GC_malloc_explicitly_typed): `next` and `value` are pointers, the
// random 64-bit key is not; blobs are pointer-free (GC_MALLOC_ATOMIC); bucket arrays are
// ordinary conservatively scanned objects.
//
// Verification: every lookup must find its key with the right blob; at the end a walk over
// all buckets checks that each entry sits in its bucket with its blob intact, and that the
// count and the XOR of the keys match what the inserts and erases say.
#include <gc.h>
#include <gc/gc_typed.h>

#include <algorithm>

#include "gcwl.h"

namespace {

using gcwl::Context;

struct Entry {
  Entry *next;
  uint64_t key;
  unsigned char *value;
  uint64_t len;
};

struct Params {
  int64_t window, inserts;
};

Params params(const Context &ctx) {
  if (ctx.size == gcwl::Size::kQuick) return {20000, 200000};
  return {300000, 3000000};
}

constexpr uint64_t kFirstBuckets = 1024;

uint64_t key_of(uint64_t seed, uint64_t i) { return gcwl::mix64(seed, i) | 1; }
uint64_t blob_len(uint64_t key) { return 16 + (key >> 40) % 49; }
unsigned char blob_byte(uint64_t key, uint64_t b) { return (unsigned char)((key >> (8 * (b & 7))) ^ b); }

// Peak over the run of entries + blobs + live bucket arrays (both arrays during a resize).
uint64_t live_bytes(const Context &ctx) {
  Params p = params(ctx);
  uint64_t entries = 0, blobs = 0, buckets = kFirstBuckets, peak = 0;
  for (int64_t i = 0; i < p.inserts; ++i) {
    uint64_t k = key_of(ctx.seed, uint64_t(i));
    entries += sizeof(Entry);
    blobs += blob_len(k);
    uint64_t arrays = buckets * sizeof(Entry *);
    if (entries / sizeof(Entry) > buckets) {
      arrays += 2 * buckets * sizeof(Entry *);
      buckets *= 2;
    }
    peak = std::max(peak, entries + blobs + arrays);
    if (i >= p.window) {
      entries -= sizeof(Entry);
      blobs -= blob_len(key_of(ctx.seed, uint64_t(i - p.window)));
    }
  }
  return peak;
}

class Map {
 public:
  explicit Map(Context &ctx) : ctx_(ctx) {
    GC_word bitmap[GC_BITMAP_SIZE(Entry)] = {0};
    GC_set_bit(bitmap, GC_WORD_OFFSET(Entry, next));
    GC_set_bit(bitmap, GC_WORD_OFFSET(Entry, value));
    descr_ = GC_make_descriptor(bitmap, GC_WORD_LEN(Entry));
    buckets_ = new_buckets(kFirstBuckets);
    nbuckets_ = kFirstBuckets;
  }

  void insert(uint64_t key) {
    auto *e = static_cast<Entry *>(GC_malloc_explicitly_typed(sizeof(Entry), descr_));
    e->key = key;
    e->len = blob_len(key);
    e->value = static_cast<unsigned char *>(GC_MALLOC_ATOMIC(e->len));
    for (uint64_t b = 0; b < e->len; ++b) e->value[b] = blob_byte(key, b);
    Entry **slot = &buckets_[key & (nbuckets_ - 1)];
    e->next = *slot;
    *slot = e;
    ++count_;
    keys_xor_ ^= key;
    if (count_ > nbuckets_) grow();
  }

  bool erase(uint64_t key) {
    for (Entry **p = &buckets_[key & (nbuckets_ - 1)]; *p; p = &(*p)->next) {
      Entry *e = *p;
      if (e->key != key) continue;
      *p = e->next;
      --count_;
      keys_xor_ ^= key;
      WL_FREE(e->value);
      WL_FREE(e);
      return true;
    }
    return ctx_.fail("erase: key %#llx is missing", (unsigned long long)key);
  }

  bool lookup(uint64_t key) {
    for (Entry *e = buckets_[key & (nbuckets_ - 1)]; e; e = e->next)
      if (e->key == key) return check_blob(e, "lookup");
    return ctx_.fail("lookup: key %#llx is missing", (unsigned long long)key);
  }

  // The whole table against the counts the operations imply.
  bool verify(uint64_t expected_count) {
    uint64_t n = 0, x = 0;
    for (uint64_t b = 0; b < nbuckets_; ++b)
      for (Entry *e = buckets_[b]; e; e = e->next) {
        if ((e->key & (nbuckets_ - 1)) != b)
          return ctx_.fail("entry with key %#llx in bucket %llu", (unsigned long long)e->key,
                           (unsigned long long)b);
        if (!check_blob(e, "final walk")) return false;
        ++n;
        x ^= e->key;
      }
    if (n != expected_count || n != count_ || x != keys_xor_)
      return ctx_.fail("table holds %llu entries (xor %#llx), expected %llu (xor %#llx)",
                       (unsigned long long)n, (unsigned long long)x,
                       (unsigned long long)expected_count, (unsigned long long)keys_xor_);
    return true;
  }

  void clear() {  // the table dies with the run
    for (uint64_t b = 0; b < nbuckets_; ++b)
      for (Entry *e = buckets_[b]; e;) {
        Entry *next = e->next;
        WL_FREE(e->value);
        WL_FREE(e);
        e = next;
      }
    WL_FREE(buckets_);
    buckets_ = nullptr;
  }

  uint64_t keys_xor() const { return keys_xor_; }
  uint64_t buckets() const { return nbuckets_; }
  Entry *some_entry() const {
    for (uint64_t b = 0;; ++b)
      if (buckets_[b]) return buckets_[b];
  }

 private:
  static Entry **new_buckets(uint64_t n) {
    return static_cast<Entry **>(GC_MALLOC(n * sizeof(Entry *)));
  }

  void grow() {
    uint64_t n = nbuckets_ * 2;
    Entry **fresh = new_buckets(n);
    for (uint64_t b = 0; b < nbuckets_; ++b)
      for (Entry *e = buckets_[b]; e;) {
        Entry *next = e->next;
        Entry **slot = &fresh[e->key & (n - 1)];
        e->next = *slot;
        *slot = e;
        e = next;
      }
    WL_FREE(buckets_);
    buckets_ = fresh;
    nbuckets_ = n;
  }

  bool check_blob(const Entry *e, const char *when) {
    bool ok = e->value && e->len == blob_len(e->key);
    for (uint64_t b = 0; ok && b < e->len; ++b) ok = e->value[b] == blob_byte(e->key, b);
    if (ok) return true;
    return ctx_.fail("%s: key %#llx has a damaged value", when, (unsigned long long)e->key);
  }

  Context &ctx_;
  GC_descr descr_;
  Entry **buckets_;
  uint64_t nbuckets_, count_ = 0, keys_xor_ = 0;
};

bool run(Context &ctx) {
  Params p = params(ctx);
  ctx.param("window", p.window);
  ctx.param("inserts", p.inserts);
  gcwl::Rng rng(ctx.seed ^ 0x5eed);
  Map map(ctx);
  for (int64_t i = 0; i < p.inserts; ++i) {
    map.insert(key_of(ctx.seed, uint64_t(i)));
    if (i >= p.window && !map.erase(key_of(ctx.seed, uint64_t(i - p.window)))) return false;
    int64_t live = std::min(i + 1, p.window);
    if (!map.lookup(key_of(ctx.seed, uint64_t(i - int64_t(rng.below(uint64_t(live))))))) return false;
    if (ctx.inject_fault && i == p.inserts / 2) gcwl::clobber_live_object(map.some_entry(), sizeof(Entry));
  }
  if (!map.verify(uint64_t(std::min(p.inserts, p.window)))) return false;
  ctx.param("buckets", int64_t(map.buckets()));
  ctx.set_checksum(map.keys_xor());
  map.clear();
  return true;
}

}  // namespace

int main(int argc, char **argv) {
  static const gcwl::Workload w{"hash-map", "hash-map: chained hash table under a sliding window of keys",
                                false, live_bytes, run};
  return gcwl::main_with(w, argc, argv);
}
