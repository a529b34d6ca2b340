// seemore/data/gif.hpp — the first frame of a GIF as 8-bit RGB, as PIL reads
// it (giflib does the LZW decoding).
//
// PIL's first frame: a canvas the size of the logical screen, grown to hold
// the frame if the frame reaches past it, filled with the frame's transparent
// index (from its graphic control extension) or else index 0; the frame's rows
// (de-interlaced) at their offset; then every index through the frame's own
// colour table, or the global one, over a grey ramp (an index past the table's
// colours, or a file without any table, reads as that grey level).
// Later frames are never read.
#pragma once

#include <seemore/data/pixels.hpp>

#include <gif_lib.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace seemore::data {

inline bool is_gif(const std::string& b) {
  return b.size() >= 6 && (b.compare(0, 6, "GIF87a") == 0 || b.compare(0, 6, "GIF89a") == 0);
}

namespace detail_gif {
struct Source {
  const std::string* bytes;
  size_t pos;
};
inline int read(GifFileType* gif, GifByteType* out, int n) {
  auto* src = static_cast<Source*>(gif->UserData);
  const size_t k = std::min(size_t(std::max(n, 0)), src->bytes->size() - src->pos);
  std::memcpy(out, src->bytes->data() + src->pos, k);
  src->pos += k;
  return int(k);
}
// Closes the file on every way out.
struct Handle {
  GifFileType* gif = nullptr;
  ~Handle() {
    int err = 0;
    if (gif) DGifCloseFile(gif, &err);
  }
};
}  // namespace detail_gif

inline Image decode_gif(const std::string& bytes, const std::string& where, const ImageLimits& lim = {}) {
  detail_gif::Source src{&bytes, 0};
  detail_gif::Handle h;
  int err = 0;
  h.gif = DGifOpen(&src, detail_gif::read, &err);
  auto fail = [&](const char* what) {
    const int code = h.gif ? h.gif->Error : err;
    const char* msg = GifErrorString(code);
    detail::fail(where, ": corrupt or truncated GIF (", what, ": ", msg ? msg : "unknown error", ")");
  };
  if (!h.gif) fail("header");
  GifFileType* gif = h.gif;
  int transparent = -1;
  for (;;) {
    GifRecordType type;
    if (DGifGetRecordType(gif, &type) == GIF_ERROR) fail("record");
    if (type == TERMINATE_RECORD_TYPE) detail::fail(where, ": GIF holds no image");
    if (type == EXTENSION_RECORD_TYPE) {
      int code = 0;
      GifByteType* ext = nullptr;
      if (DGifGetExtension(gif, &code, &ext) == GIF_ERROR) fail("extension");
      // Graphic control: [size 4, flags, delay (2), transparent index]; bit 0 of flags marks it valid.
      if (code == GRAPHICS_EXT_FUNC_CODE && ext && ext[0] >= 4) transparent = (ext[1] & 1) ? ext[4] : -1;
      while (ext)
        if (DGifGetExtensionNext(gif, &ext) == GIF_ERROR) fail("extension");
      continue;
    }
    if (type != IMAGE_DESC_RECORD_TYPE) continue;
    if (DGifGetImageDesc(gif) == GIF_ERROR) fail("image descriptor");
    const GifImageDesc& d = gif->Image;
    const int64_t fw = d.Width, fh = d.Height, left = d.Left, top = d.Top;
    detail_img::check_dims(uint64_t(std::max<int64_t>(fw, 0)), uint64_t(std::max<int64_t>(fh, 0)), lim, where);
    const int64_t W = std::max<int64_t>(gif->SWidth, left + fw), H = std::max<int64_t>(gif->SHeight, top + fh);
    detail_img::check_dims(uint64_t(W), uint64_t(H), lim, where);
    std::vector<GifPixelType> index(size_t(W) * size_t(H), GifPixelType(transparent >= 0 ? transparent : 0));
    auto row = [&](int64_t y) {
      if (DGifGetLine(gif, index.data() + size_t(top + y) * size_t(W) + size_t(left), int(fw)) == GIF_ERROR)
        fail("pixels");
    };
    if (d.Interlace) {
      // Four passes: rows 0, 8, 16...; 4, 12...; 2, 6, 10...; 1, 3, 5...
      const int64_t start[4] = {0, 4, 2, 1}, step[4] = {8, 8, 4, 2};
      for (int pass = 0; pass < 4; ++pass)
        for (int64_t y = start[pass]; y < fh; y += step[pass]) row(y);
    } else {
      for (int64_t y = 0; y < fh; ++y) row(y);
    }
    uint8_t palette[256][3];
    for (int i = 0; i < 256; ++i) palette[i][0] = palette[i][1] = palette[i][2] = uint8_t(i);
    const ColorMapObject* map = d.ColorMap ? d.ColorMap : gif->SColorMap;
    if (map && map->Colors)
      for (int i = 0; i < std::min(map->ColorCount, 256); ++i)
        palette[i][0] = map->Colors[i].Red, palette[i][1] = map->Colors[i].Green, palette[i][2] = map->Colors[i].Blue;
    Image img;
    img.width = W, img.height = H;
    img.rgb.resize(index.size() * 3);
    for (size_t i = 0; i < index.size(); ++i)
      std::memcpy(img.rgb.data() + 3 * i, palette[index[i]], 3);
    return img;
  }
}

}  // namespace seemore::data
