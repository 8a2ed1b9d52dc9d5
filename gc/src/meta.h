// Small building blocks for collector metadata that must not come from malloc.
//
// While the world is stopped, a stopped thread may hold malloc's lock; and what the
// collector keeps about objects (finalizer tables, weak links) must stay invisible to the
// conservative scan. So metadata lives in anonymous mappings: MetaVector (a growable
// array) and PtrTable (an open-addressing hash table keyed by address).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "dunegc/allocators/chunk_provider.h"

namespace dunegc::gc {

using allocators::ChunkProvider;

template <typename T>
class MetaVector {
  static_assert(std::is_trivially_copyable_v<T>, "MetaVector moves elements with memcpy");

 public:
  MetaVector() = default;
  ~MetaVector() { ChunkProvider::unmap_metadata(data_, cap_ * sizeof(T)); }
  MetaVector(const MetaVector &) = delete;
  MetaVector &operator=(const MetaVector &) = delete;

  bool push(const T &v) {
    if (size_ == cap_ && !reserve(cap_ ? cap_ * 2 : 4096 / sizeof(T) + 1)) return false;
    data_[size_++] = v;
    return true;
  }
  bool reserve(size_t n) {
    if (n <= cap_) return true;
    size_t bytes = (n * sizeof(T) + 4095) & ~size_t{4095};
    T *d = static_cast<T *>(ChunkProvider::map_metadata(bytes));
    if (!d) return false;
    if (size_) memcpy(static_cast<void *>(d), data_, size_ * sizeof(T));
    ChunkProvider::unmap_metadata(data_, cap_ * sizeof(T));
    data_ = d;
    cap_ = bytes / sizeof(T);
    return true;
  }
  void clear() { size_ = 0; }
  void truncate(size_t n) {
    if (n < size_) size_ = n;
  }
  void erase_at(size_t i) { data_[i] = data_[--size_]; }  // unordered
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  T &operator[](size_t i) { return data_[i]; }
  const T &operator[](size_t i) const { return data_[i]; }
  T *begin() { return data_; }
  T *end() { return data_ + size_; }
  const T *begin() const { return data_; }
  const T *end() const { return data_ + size_; }

 private:
  T *data_ = nullptr;
  size_t size_ = 0, cap_ = 0;
};

// Open addressing with linear probing and backward-shift deletion; key 0 means empty.
template <typename V>
class PtrTable {
  static_assert(std::is_trivially_copyable_v<V>);

 public:
  struct Slot {
    uintptr_t key;
    V value;
  };

  PtrTable() = default;
  ~PtrTable() { ChunkProvider::unmap_metadata(slots_, cap_ * sizeof(Slot)); }
  PtrTable(const PtrTable &) = delete;
  PtrTable &operator=(const PtrTable &) = delete;

  size_t size() const { return size_; }
  V *find(uintptr_t key) {
    if (!size_) return nullptr;
    for (size_t i = hash(key);; i = (i + 1) & (cap_ - 1)) {
      if (slots_[i].key == key) return &slots_[i].value;
      if (slots_[i].key == 0) return nullptr;
    }
  }
  // Inserts or finds; *inserted says which. nullptr when out of memory.
  V *insert(uintptr_t key, bool *inserted) {
    if ((size_ + 1) * 4 > cap_ * 3 && !grow()) return nullptr;
    for (size_t i = hash(key);; i = (i + 1) & (cap_ - 1)) {
      if (slots_[i].key == key) {
        *inserted = false;
        return &slots_[i].value;
      }
      if (slots_[i].key == 0) {
        slots_[i].key = key;
        size_++;
        *inserted = true;
        return &slots_[i].value;
      }
    }
  }
  bool erase(uintptr_t key) {
    if (!size_) return false;
    size_t i = hash(key);
    for (;; i = (i + 1) & (cap_ - 1)) {
      if (slots_[i].key == key) break;
      if (slots_[i].key == 0) return false;
    }
    erase_slot(i);
    return true;
  }
  // Calls f(key, value) for each entry; f returns true to erase it. Safe while erasing.
  template <typename F>
  void sweep(F &&f) {
    if (!size_) return;
    // Start just after an empty slot so backward shifts never move an entry into the
    // part already visited.
    size_t start = 0;
    while (slots_[start].key != 0) start++;
    for (size_t visited = 0, i = (start + 1) & (cap_ - 1); visited < cap_;) {
      if (slots_[i].key != 0 && f(slots_[i].key, slots_[i].value)) {
        erase_slot(i);  // the slot now holds a later entry (or is empty): look again
        continue;
      }
      i = (i + 1) & (cap_ - 1);
      visited++;
    }
  }

 private:
  size_t hash(uintptr_t k) const { return size_t((k >> 4) * 0x9E3779B97F4A7C15ull >> shift_); }
  void erase_slot(size_t i) {
    size_t j = i;
    for (;;) {
      j = (j + 1) & (cap_ - 1);
      if (slots_[j].key == 0) break;
      size_t h = hash(slots_[j].key);
      // Move j back to i if its home h is not in (i, j] cyclically.
      bool in_range = i <= j ? (h > i && h <= j) : (h > i || h <= j);
      if (!in_range) {
        slots_[i] = slots_[j];
        i = j;
      }
    }
    slots_[i].key = 0;
    size_--;
  }
  bool grow() {
    size_t ncap = cap_ ? cap_ * 2 : 256;
    auto *ns = static_cast<Slot *>(ChunkProvider::map_metadata(ncap * sizeof(Slot)));
    if (!ns) return false;
    Slot *old = slots_;
    size_t ocap = cap_;
    slots_ = ns;
    cap_ = ncap;
    shift_ = unsigned(64 - __builtin_ctzll(ncap));
    size_ = 0;
    for (size_t i = 0; i < ocap; i++) {
      if (old[i].key) {
        bool ins;
        *insert(old[i].key, &ins) = old[i].value;
      }
    }
    ChunkProvider::unmap_metadata(old, ocap * sizeof(Slot));
    return true;
  }

  Slot *slots_ = nullptr;
  size_t cap_ = 0, size_ = 0;
  unsigned shift_ = 64;
};

}  // namespace dunegc::gc
