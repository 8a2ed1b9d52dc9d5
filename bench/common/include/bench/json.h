// A minimal streaming JSON writer for result files (no dependency beyond the standard
// library). Keys and values are escaped; doubles are written with enough digits to
// round-trip, and non-finite values become null (JSON has no NaN).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

namespace bench {

class JsonWriter {
 public:
  JsonWriter &begin_object() { return open('{'); }
  JsonWriter &end_object() { return close('}'); }
  JsonWriter &begin_array() { return open('['); }
  JsonWriter &end_array() { return close(']'); }

  JsonWriter &key(std::string_view k) {
    comma();
    quote(k);
    out_ += ": ";
    after_key_ = true;
    return *this;
  }
  JsonWriter &value(std::string_view s) { comma(); quote(s); return *this; }
  JsonWriter &value(const char *s) { return value(std::string_view(s)); }
  JsonWriter &value(bool b) { comma(); out_ += b ? "true" : "false"; return *this; }
  JsonWriter &value(int64_t i) { comma(); out_ += std::to_string(i); return *this; }
  JsonWriter &value(uint64_t i) { comma(); out_ += std::to_string(i); return *this; }
  JsonWriter &value(int i) { return value(int64_t(i)); }
  JsonWriter &value(unsigned i) { return value(uint64_t(i)); }
  JsonWriter &value(double d) {
    comma();
    if (!std::isfinite(d)) {
      out_ += "null";
    } else {
      char buf[32];
      snprintf(buf, sizeof buf, "%.17g", d);
      out_ += buf;
    }
    return *this;
  }
  JsonWriter &null() { comma(); out_ += "null"; return *this; }
  // Splice in text that is already JSON (e.g. dune_platform_json()).
  JsonWriter &raw(std::string_view json) { comma(); out_ += json; return *this; }

  template <typename T>
  JsonWriter &kv(std::string_view k, const T &v) { key(k); return value(v); }

  const std::string &str() const { return out_; }

  // Write to `path` ("-" = stdout). Returns false with errno set on failure.
  bool write_file(const std::string &path) const {
    FILE *f = path == "-" ? stdout : fopen(path.c_str(), "w");
    if (!f) return false;
    bool ok = fwrite(out_.data(), 1, out_.size(), f) == out_.size() && fputc('\n', f) != EOF;
    if (f != stdout) ok = (fclose(f) == 0) && ok;
    return ok;
  }

 private:
  JsonWriter &open(char c) { comma(); out_ += c; first_.push_back(true); return *this; }
  JsonWriter &close(char c) { out_ += c; first_.pop_back(); return *this; }
  void comma() {
    if (after_key_) { after_key_ = false; return; }
    if (!first_.empty()) {
      if (!first_.back()) out_ += ", ";
      first_.back() = false;
    }
  }
  void quote(std::string_view s) {
    out_ += '"';
    for (char c : s) {
      switch (c) {
        case '"': out_ += "\\\""; break;
        case '\\': out_ += "\\\\"; break;
        case '\n': out_ += "\\n"; break;
        case '\t': out_ += "\\t"; break;
        default:
          if (static_cast<unsigned char>(c) < 0x20) {
            char buf[8];
            snprintf(buf, sizeof buf, "\\u%04x", c);
            out_ += buf;
          } else {
            out_ += c;
          }
      }
    }
    out_ += '"';
  }

  std::string out_;
  std::vector<bool> first_;
  bool after_key_ = false;
};

}  // namespace bench
