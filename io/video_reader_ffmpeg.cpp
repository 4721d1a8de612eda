// FFmpeg video reader: demux the best video stream, decode every frame, convert to RGB24 with the
// stream's own colour matrix and range (BT.601 when untagged, as FFmpeg assumes).
#include <memory>

#include "io/ffmpeg_check.h"
#include "io/video_reader.h"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>
}

namespace vdit {
namespace {

// Owns every FFmpeg object of one read, released on any return path.
struct Reader {
  AVFormatContext* fmt = nullptr;
  AVCodecContext* dec = nullptr;
  AVFrame* frame = nullptr;
  AVPacket* pkt = nullptr;
  SwsContext* sws = nullptr;
  int stream = -1;
  ~Reader() {
    sws_freeContext(sws);
    av_packet_free(&pkt);
    av_frame_free(&frame);
    avcodec_free_context(&dec);
    avformat_close_input(&fmt);
  }
};

Status convert_frame(DecodedVideo* out, Reader& r) {
  const AVFrame* f = r.frame;
  if (out->frames.empty() && out->width == 0) {
    out->width = f->width;
    out->height = f->height;
    const char* name = av_get_pix_fmt_name(static_cast<AVPixelFormat>(f->format));
    out->pixel_format = name ? name : "?";
  }
  if (f->width != out->width || f->height != out->height) {
    return format_error(strfmt("frame %zu is %dx%d but the video started at %dx%d", out->frames.size(), f->width,
                               f->height, out->width, out->height));
  }
  if (!r.sws) {
    r.sws = sws_getContext(f->width, f->height, static_cast<AVPixelFormat>(f->format), f->width, f->height,
                           AV_PIX_FMT_RGB24, SWS_LANCZOS | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT, nullptr, nullptr,
                           nullptr);
    if (!r.sws) return unsupported("swscale cannot convert this pixel format to RGB24");
    // sws_getCoefficients maps AVColorSpace values (unspecified -> BT.601); RGB output is full range.
    const int* coefficients = sws_getCoefficients(f->colorspace);
    int src_full_range = f->color_range == AVCOL_RANGE_JPEG ? 1 : 0;
    sws_setColorspaceDetails(r.sws, coefficients, src_full_range, sws_getCoefficients(SWS_CS_DEFAULT), 1, 0, 1 << 16,
                             1 << 16);
  }
  std::vector<uint8_t> rgb(static_cast<size_t>(f->width) * f->height * 3);  // [H, W, 3]
  uint8_t* dst[1] = {rgb.data()};
  int dst_stride[1] = {3 * f->width};
  sws_scale(r.sws, f->data, f->linesize, 0, f->height, dst, dst_stride);
  out->frames.push_back(std::move(rgb));
  return Status::ok();
}

// Sends `pkt` (nullptr: drain) and converts every frame the decoder has ready.
Status decode(DecodedVideo* out, Reader& r, const AVPacket* pkt) {
  VDIT_CHECK(av_result(avcodec_send_packet(r.dec, pkt)));
  for (;;) {
    int rc = avcodec_receive_frame(r.dec, r.frame);
    if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF) break;
    VDIT_CHECK(av_result(rc));
    Status s = convert_frame(out, r);
    av_frame_unref(r.frame);
    VDIT_TRY(s);
  }
  return Status::ok();
}

Status read_all(DecodedVideo* out, Reader& r, const std::string& path) {
  route_ffmpeg_log();
  VDIT_CHECK(av_result(avformat_open_input(&r.fmt, path.c_str(), nullptr, nullptr)));
  VDIT_CHECK(av_result(avformat_find_stream_info(r.fmt, nullptr)));
  const AVCodec* codec = nullptr;
  r.stream = av_find_best_stream(r.fmt, AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
  VDIT_CHECK(av_result(r.stream));
  AVStream* st = r.fmt->streams[r.stream];
  r.dec = avcodec_alloc_context3(codec);
  r.frame = av_frame_alloc();
  r.pkt = av_packet_alloc();
  if (!r.dec || !r.frame || !r.pkt) return out_of_memory("allocating the FFmpeg decoder");
  VDIT_CHECK(av_result(avcodec_parameters_to_context(r.dec, st->codecpar)));
  VDIT_CHECK(av_result(avcodec_open2(r.dec, codec, nullptr)));
  out->codec = codec->name;
  out->fps = st->avg_frame_rate.den ? av_q2d(st->avg_frame_rate) : 0;
  for (;;) {
    int rc = av_read_frame(r.fmt, r.pkt);
    if (rc == AVERROR_EOF) break;
    VDIT_CHECK(av_result(rc));
    Status s = r.pkt->stream_index == r.stream ? decode(out, r, r.pkt) : Status::ok();
    av_packet_unref(r.pkt);
    VDIT_TRY(s);
  }
  return decode(out, r, nullptr);
}

}  // namespace

Result<DecodedVideo> read_video_rgb(const std::string& path) {
  DecodedVideo out;
  Reader r;
  Status s = read_all(&out, r, path);
  if (!s) return s.with_context("reading video " + path);
  return out;
}

}  // namespace vdit
