// FFmpeg video sink: RGB24 frames -> swscale (BT.709, limited range) -> yuv420p -> libx264 or
// libvpx-vp9 -> MP4 / Matroska / WebM muxer, written to a temporary name and renamed on finish().
// Does not scale, pad or crop: the video has exactly the frame size it was opened with.
#include <unistd.h>

#include <cmath>
#include <cstdio>

#include "io/ffmpeg_check.h"
#include "io/video_writer.h"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/opt.h>
#include <libswscale/swscale.h>
}

namespace vdit {
namespace {

class FfmpegVideoWriter final : public FrameSink {
 public:
  FfmpegVideoWriter(std::string path, const VideoCodecSpec* spec, int crf)
      : path_(std::move(path)), spec_(spec), crf_(crf) {}
  ~FfmpegVideoWriter() override { abort(); }

  Status open(int width, int height, double fps, int expected_frames) override {
    if (state_ != State::idle) return invalid_argument(path_ + ": open() called twice on a video writer");
    if (width <= 0 || height <= 0)
      return invalid_argument(strfmt("%s: frame size %dx%d is not positive", path_.c_str(), width, height));
    if (width % 2 || height % 2) {
      return invalid_argument(
          strfmt("%s: %s video needs an even width and height (yuv420p halves the chroma planes); "
                 "got %dx%d: use an even size, or PNG output for odd sizes",
                 path_.c_str(), spec_->codec_label, width, height));
    }
    if (!(fps > 0 && fps <= 1000))
      return invalid_argument(strfmt("%s: frame rate %g is outside (0, 1000]", path_.c_str(), fps));
    width_ = width;
    height_ = height;
    temp_path_ = temporary_path_for(path_, false);
    state_ = State::open;
    Status s = open_encoder(fps);
    if (!s) {
      abort();
      return s.with_context(path_);
    }
    return Status::ok();
  }

  Status write(const uint8_t* rgb, size_t bytes) override {
    if (state_ != State::open) return invalid_argument(path_ + ": write() on a video writer that is not open");
    size_t want = static_cast<size_t>(width_) * static_cast<size_t>(height_) * 3;
    if (!rgb || bytes != want) {
      return invalid_argument(strfmt("%s: frame has %zu bytes, expected %zu (%dx%d RGB, [H, W, 3])", path_.c_str(),
                                     bytes, want, width_, height_));
    }
    Status s = write_frame(rgb);
    return s ? s : s.with_context(path_);
  }

  Status finish() override {
    if (state_ != State::open) return invalid_argument(path_ + ": finish() on a video writer that is not open");
    if (frames_ == 0) return invalid_argument(path_ + ": no frames were written; nothing to finish");
    Status s = flush_and_close();
    if (!s) {
      abort();
      return s.with_context(path_);
    }
    s = rename_into_place(temp_path_, path_, false);
    if (!s) {
      abort();
      return s;
    }
    state_ = State::finished;
    return Status::ok();
  }

  void abort() override {
    if (state_ != State::open) return;
    release();
    std::remove(temp_path_.c_str());
    state_ = State::aborted;
  }

  const std::string& path() const override { return path_; }
  int frames_written() const override { return frames_; }

 private:
  enum class State { idle, open, finished, aborted };

  Status open_encoder(double fps) {
    route_ffmpeg_log();
    VDIT_CHECK(av_result(avformat_alloc_output_context2(&fmt_, nullptr, spec_->container, temp_path_.c_str())));
    const AVCodec* codec = avcodec_find_encoder_by_name(spec_->codec);
    if (!codec) {
      return unsupported(
          strfmt("this FFmpeg has no %s encoder (%s); install a libavcodec built with it "
                 "(Debian: apt-get install libavcodec59 libavcodec-dev)",
                 spec_->codec_label, spec_->codec));
    }
    stream_ = avformat_new_stream(fmt_, nullptr);
    enc_ = avcodec_alloc_context3(codec);
    frame_ = av_frame_alloc();
    pkt_ = av_packet_alloc();
    if (!stream_ || !enc_ || !frame_ || !pkt_) return out_of_memory("allocating the FFmpeg encoder");

    AVRational rate = av_d2q(fps, 100000);
    enc_->width = width_;
    enc_->height = height_;
    enc_->pix_fmt = AV_PIX_FMT_YUV420P;
    enc_->time_base = av_inv_q(rate);
    enc_->framerate = rate;
    enc_->sample_aspect_ratio = AVRational{1, 1};
    enc_->color_range = AVCOL_RANGE_MPEG;
    enc_->colorspace = AVCOL_SPC_BT709;
    enc_->color_primaries = AVCOL_PRI_BT709;
    enc_->color_trc = AVCOL_TRC_BT709;
    enc_->thread_count = 0;  // FFmpeg picks
    if (fmt_->oformat->flags & AVFMT_GLOBALHEADER) enc_->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    AVDictionary* codec_opts = nullptr;
    av_dict_set(&codec_opts, "crf", std::to_string(crf_).c_str(), 0);
    if (std::string(spec_->codec) == "libx264") {
      av_dict_set(&codec_opts, "preset", "medium", 0);
    } else if (std::string(spec_->codec) == "libvpx-vp9") {
      enc_->bit_rate = 0;  // with crf: constant quality, no bitrate cap
      av_dict_set(&codec_opts, "deadline", "good", 0);
      av_dict_set(&codec_opts, "cpu-used", "4", 0);
      av_dict_set(&codec_opts, "row-mt", "1", 0);
    }
    int rc = avcodec_open2(enc_, codec, &codec_opts);
    av_dict_free(&codec_opts);
    VDIT_CHECK(av_result(rc));
    VDIT_CHECK(av_result(avcodec_parameters_from_context(stream_->codecpar, enc_)));
    stream_->time_base = enc_->time_base;
    stream_->avg_frame_rate = rate;

    frame_->format = enc_->pix_fmt;
    frame_->width = width_;
    frame_->height = height_;
    VDIT_CHECK(av_result(av_frame_get_buffer(frame_, 0)));
    // Lanczos for the 2x chroma downsampling: measured +0.3 dB RGB PSNR over bicubic on moving shapes
    // (4:2:0 itself, not the codec, is what limits PSNR at the default CRF).
    sws_ = sws_getContext(width_, height_, AV_PIX_FMT_RGB24, width_, height_, AV_PIX_FMT_YUV420P,
                          SWS_LANCZOS | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INP, nullptr, nullptr, nullptr);
    if (!sws_) return internal_error("swscale cannot convert RGB24 to yuv420p at this size");
    const int* bt709 = sws_getCoefficients(SWS_CS_ITU709);
    // RGB input is full range; the yuv420p output is limited (TV) range, as tagged above.
    sws_setColorspaceDetails(sws_, bt709, 1, bt709, 0, 0, 1 << 16, 1 << 16);

    VDIT_CHECK(av_result(avio_open(&fmt_->pb, temp_path_.c_str(), AVIO_FLAG_WRITE)));
    AVDictionary* mux_opts = nullptr;
    // MP4: move the index to the front so players can start before the whole file has loaded.
    if (std::string(spec_->container) == "mp4") av_dict_set(&mux_opts, "movflags", "+faststart", 0);
    rc = avformat_write_header(fmt_, &mux_opts);
    av_dict_free(&mux_opts);
    VDIT_CHECK(av_result(rc));
    return Status::ok();
  }

  Status write_frame(const uint8_t* rgb) {
    VDIT_CHECK(av_result(av_frame_make_writable(frame_)));
    const uint8_t* src[1] = {rgb};
    int src_stride[1] = {3 * width_};
    sws_scale(sws_, src, src_stride, 0, height_, frame_->data, frame_->linesize);
    frame_->pts = frames_;
    VDIT_TRY(encode(frame_));
    ++frames_;
    return Status::ok();
  }

  // Sends `frame` (nullptr: end of stream) and writes every packet the encoder has ready.
  Status encode(AVFrame* frame) {
    VDIT_CHECK(av_result(avcodec_send_frame(enc_, frame)));
    for (;;) {
      int rc = avcodec_receive_packet(enc_, pkt_);
      if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF) break;
      VDIT_CHECK(av_result(rc));
      av_packet_rescale_ts(pkt_, enc_->time_base, stream_->time_base);
      pkt_->stream_index = stream_->index;
      VDIT_CHECK(av_result(av_interleaved_write_frame(fmt_, pkt_)));  // takes the packet's reference
    }
    return Status::ok();
  }

  Status flush_and_close() {
    VDIT_TRY(encode(nullptr));
    VDIT_CHECK(av_result(av_write_trailer(fmt_)));
    int rc = avio_closep(&fmt_->pb);
    VDIT_CHECK(av_result(rc));
    release();
    return Status::ok();
  }

  void release() {
    if (fmt_ && fmt_->pb) avio_closep(&fmt_->pb);
    avformat_free_context(fmt_);  // frees the stream too
    fmt_ = nullptr;
    stream_ = nullptr;
    avcodec_free_context(&enc_);
    av_frame_free(&frame_);
    av_packet_free(&pkt_);
    sws_freeContext(sws_);
    sws_ = nullptr;
  }

  std::string path_;
  std::string temp_path_;
  const VideoCodecSpec* spec_;
  int crf_;
  State state_ = State::idle;
  int width_ = 0, height_ = 0;
  int frames_ = 0;
  AVFormatContext* fmt_ = nullptr;
  AVStream* stream_ = nullptr;
  AVCodecContext* enc_ = nullptr;
  AVFrame* frame_ = nullptr;
  AVPacket* pkt_ = nullptr;
  SwsContext* sws_ = nullptr;
};

}  // namespace

bool video_writer_available() { return true; }

Result<std::unique_ptr<FrameSink>> create_video_writer(const std::string& path, const VideoWriterOptions& options) {
  const VideoCodecSpec* spec = video_codec_for(options.container);
  if (!spec)
    return invalid_argument("unknown video container \"" + options.container + "\": use mp4, matroska or webm");
  int crf = options.crf < 0 ? spec->crf_default : options.crf;
  if (crf < spec->crf_min || crf > spec->crf_max) {
    return invalid_argument(strfmt("CRF %d is outside %s's range %d..%d (lower is better; default %d)", crf,
                                   spec->codec_label, spec->crf_min, spec->crf_max, spec->crf_default));
  }
  return std::unique_ptr<FrameSink>(new FfmpegVideoWriter(path, spec, crf));
}

}  // namespace vdit
