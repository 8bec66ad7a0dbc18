// The read-bandwidth probes behind stc-bench's and the compile report's
// rooflines. Rates are timing, so only their sanity is checked here (a broken
// probe returns 0, NaN or infinity, which these catch); the numbers themselves
// are in the closing notes.
#include "Bandwidth.h"

#include <gtest/gtest.h>

#include <cmath>

namespace {

TEST(BandwidthTest, StreamingRateIsFiniteAndPositive) {
  double r = stc::rt::measureReadBandwidth(1, size_t(8) << 20, 1);
  EXPECT_TRUE(std::isfinite(r));
  EXPECT_GT(r, 0);
}

TEST(BandwidthTest, SparseRatesAreFiniteAndPositive) {
  for (double live : {0.1, 0.5, 1.0}) {
    stc::rt::SparseReadRates r =
        stc::rt::measureSparseReadBandwidth(2, 768, live, size_t(8) << 20, 1);
    EXPECT_TRUE(std::isfinite(r.streaming) && std::isfinite(r.liveRows))
        << "live " << live;
    EXPECT_GT(r.streaming, 0) << "live " << live;
    EXPECT_GT(r.liveRows, 0) << "live " << live;
  }
}

TEST(BandwidthTest, NoLiveRowsReportsTheStreamingRate) {
  // Nothing to read sparsely: the live-row rate is defined as the streaming
  // one (a share of 1), not a division by zero.
  stc::rt::SparseReadRates r =
      stc::rt::measureSparseReadBandwidth(1, 768, 0.0, size_t(4) << 20, 1);
  EXPECT_EQ(r.liveRows, r.streaming);
}

} // namespace
