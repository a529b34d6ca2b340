// seemore/data/csv.hpp — RFC 4180 CSV: fields separated by commas, records by
// CRLF or LF, fields optionally in double quotes (which may hold commas, line
// breaks and "" for a quote). Errors name the file and the record (1-based,
// the header being record 1) where the problem is.
#pragma once

#include <seemore/config.hpp>

#include <string>
#include <vector>

namespace seemore::data {

struct CsvRecord {
  std::vector<std::string> fields;
  size_t line = 0;  // line where the record starts (1-based)
};

inline std::vector<CsvRecord> parse_csv(const std::string& text, const std::string& where) {
  std::vector<CsvRecord> records;
  CsvRecord rec;
  std::string field;
  size_t line = 1, i = 0;
  const size_t n = text.size();
  size_t start = (n >= 3 && text.compare(0, 3, "\xEF\xBB\xBF") == 0) ? 3 : 0;  // UTF-8 BOM
  i = start;
  rec.line = 1;
  bool any = false;  // the current record has content
  auto end_field = [&] {
    rec.fields.push_back(std::move(field));
    field.clear();
  };
  auto end_record = [&] {
    end_field();
    records.push_back(std::move(rec));
    rec = CsvRecord{};
    rec.line = line;
    any = false;
  };
  while (i < n) {
    const char c = text[i];
    if (c == '"' && field.empty() && (i == start || text[i - 1] == ',' || text[i - 1] == '\n' || text[i - 1] == '\r')) {
      // quoted field
      const size_t open_line = line;
      ++i;
      any = true;
      for (;;) {
        SEEMORE_CHECK(i < n, where, ": line ", open_line, ": quoted field is never closed");
        if (text[i] == '"') {
          if (i + 1 < n && text[i + 1] == '"') {
            field.push_back('"');
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        if (text[i] == '\n') ++line;
        field.push_back(text[i++]);
      }
      SEEMORE_CHECK(i >= n || text[i] == ',' || text[i] == '\n' || text[i] == '\r', where, ": line ", line,
                    ": unexpected character after a closing quote");
      continue;
    }
    if (c == ',') {
      end_field();
      any = true;
      ++i;
    } else if (c == '\r' || c == '\n') {
      if (c == '\r' && i + 1 < n && text[i + 1] == '\n') ++i;
      ++i;
      ++line;
      if (any || !field.empty() || !rec.fields.empty()) end_record();
      else rec.line = line;  // blank line: skipped
    } else {
      field.push_back(c);
      any = true;
      ++i;
    }
  }
  if (any || !field.empty() || !rec.fields.empty()) end_record();
  return records;
}

}  // namespace seemore::data
