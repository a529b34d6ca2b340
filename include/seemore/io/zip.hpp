// seemore/io/zip.hpp — reading the stored (uncompressed) entries of a ZIP
// archive held in memory, the container torch.save writes.
//
// The central directory is the index: its entries give each member's name,
// sizes and local header. Zip64 records are followed when a field says so.
// Every offset and size is checked against the archive's bytes before it is
// used, and a member's CRC-32 is checked when it is read, so a truncated or
// corrupted file is an error naming the member, never a wrong tensor.
#pragma once

#include <seemore/config.hpp>
#include <seemore/io/endian.hpp>

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace seemore::io {

class ZipReader {
 public:
  struct Entry {
    uint64_t header = 0, size = 0, packed = 0;
    uint32_t crc = 0;
    uint16_t method = 0;
  };

  // `bytes` must outlive the reader; `where` starts every error message.
  ZipReader(const std::string& bytes, std::string where) : b_(bytes), where_(std::move(where)) { index(); }

  const std::map<std::string, Entry>& entries() const { return entries_; }
  bool contains(const std::string& name) const { return entries_.count(name) != 0; }

  // A member's bytes, checked against its CRC-32.
  std::string_view read(const std::string& name) const {
    auto it = entries_.find(name);
    if (it == entries_.end()) detail::fail(where_, ": archive has no member '", name, "'");
    const Entry& e = it->second;
    SEEMORE_CHECK(e.method == 0, where_, ": member '", name, "' is compressed (method ", e.method,
                  "); torch.save stores its members uncompressed");
    SEEMORE_CHECK(e.packed == e.size, where_, ": member '", name, "' has inconsistent sizes");
    need(e.header, 30, "local header of '" + name + "'");
    SEEMORE_CHECK(u32(e.header) == 0x04034b50, where_, ": bad local header signature for '", name, "'");
    const uint64_t at = e.header + 30 + u16(e.header + 26) + u16(e.header + 28);
    need(at, e.size, "data of '" + name + "'");
    std::string_view data(b_.data() + at, size_t(e.size));
    SEEMORE_CHECK(crc32(data) == e.crc, where_, ": member '", name, "' is corrupt (CRC mismatch)");
    return data;
  }

  // CRC-32 (ISO-HDLC, ZIP's): also what a writer of test archives needs.
  static uint32_t crc32(std::string_view d) {
    static const std::array<uint32_t, 256> table = [] {
      std::array<uint32_t, 256> t{};
      for (uint32_t i = 0; i < 256; ++i) {
        uint32_t c = i;
        for (int k = 0; k < 8; ++k) c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
        t[i] = c;
      }
      return t;
    }();
    uint32_t c = 0xffffffffu;
    for (unsigned char x : d) c = table[(c ^ x) & 0xff] ^ (c >> 8);
    return c ^ 0xffffffffu;
  }


 private:
  const std::string& b_;
  std::string where_;
  std::map<std::string, Entry> entries_;

  void need(uint64_t at, uint64_t n, const std::string& what) const {
    SEEMORE_CHECK(at <= b_.size() && n <= b_.size() - at, where_, ": truncated ZIP archive (", what, " at byte ", at,
                  " needs ", n, " bytes, the file has ", b_.size(), ")");
  }
  uint64_t le(uint64_t at, int n) const { return load_le(b_.data() + at, n); }
  uint16_t u16(uint64_t at) const { return uint16_t(le(at, 2)); }
  uint32_t u32(uint64_t at) const { return uint32_t(le(at, 4)); }

  void index() {
    // The end-of-central-directory record: 22 bytes plus a comment of up to 64 KiB, at the end.
    SEEMORE_CHECK(b_.size() >= 22, where_, ": truncated ZIP archive (", b_.size(), " bytes)");
    uint64_t eocd = b_.size() - 22;
    const uint64_t lowest = b_.size() > 22 + 65535 ? b_.size() - 22 - 65535 : 0;
    while (u32(eocd) != 0x06054b50) {
      SEEMORE_CHECK(eocd > lowest, where_, ": not a ZIP archive or truncated (no end-of-central-directory record)");
      --eocd;
    }
    uint64_t count = u16(eocd + 10), dir_size = u32(eocd + 12), dir_at = u32(eocd + 16);
    if (count == 0xffff || dir_size == 0xffffffffu || dir_at == 0xffffffffu) {
      // Zip64: a locator just before the record points at the 64-bit record.
      SEEMORE_CHECK(eocd >= 20 && u32(eocd - 20) == 0x07064b50, where_, ": ZIP64 archive without its locator");
      const uint64_t at = le(eocd - 20 + 8, 8);
      need(at, 56, "ZIP64 end record");
      SEEMORE_CHECK(u32(at) == 0x06064b50, where_, ": bad ZIP64 end record");
      count = le(at + 32, 8), dir_size = le(at + 40, 8), dir_at = le(at + 48, 8);
    }
    need(dir_at, dir_size, "central directory");
    SEEMORE_CHECK(count <= dir_size / 46, where_, ": central directory claims ", count, " members in ", dir_size,
                  " bytes");
    uint64_t p = dir_at;
    for (uint64_t i = 0; i < count; ++i) {
      need(p, 46, "central directory entry");
      SEEMORE_CHECK(u32(p) == 0x02014b50, where_, ": bad central directory entry ", i);
      Entry e;
      e.method = u16(p + 10);
      e.crc = u32(p + 16);
      e.packed = u32(p + 20);
      e.size = u32(p + 24);
      e.header = u32(p + 42);
      const uint64_t name_len = u16(p + 28), extra_len = u16(p + 30), comment_len = u16(p + 32);
      need(p + 46, name_len + extra_len + comment_len, "central directory entry");
      std::string name = b_.substr(size_t(p + 46), size_t(name_len));
      // Zip64 extra field: the 64-bit values of the fields set to all ones, in this order.
      uint64_t x = p + 46 + name_len;
      const uint64_t x_end = x + extra_len;
      while (x + 4 <= x_end) {
        const uint16_t id = u16(x), len = u16(x + 2);
        SEEMORE_CHECK(x + 4 + len <= x_end, where_, ": bad extra field in entry '", name, "'");
        if (id == 1) {
          uint64_t q = x + 4;
          auto take = [&](uint64_t& field, uint64_t all_ones) {
            if (field != all_ones) return;
            SEEMORE_CHECK(q + 8 <= x + 4 + len, where_, ": short ZIP64 field in entry '", name, "'");
            field = le(q, 8);
            q += 8;
          };
          take(e.size, 0xffffffffu);
          take(e.packed, 0xffffffffu);
          take(e.header, 0xffffffffu);
        }
        x += 4 + len;
      }
      SEEMORE_CHECK(entries_.emplace(name, e).second, where_, ": member '", name, "' appears twice");
      p += 46 + name_len + extra_len + comment_len;
    }
  }
};

}  // namespace seemore::io
