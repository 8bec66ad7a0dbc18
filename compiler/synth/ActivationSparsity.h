// ActivationSparsity: synthetic checkpoints whose expert neurons are dead
// (relu(gate) = 0) at the rates SmallThinker's paper reports, instead of the
// ~50% of random weights (spec §3.2).
//
// Each neuron gets its own firing rate, drawn log-normal (spread chosen so two
// tokens' live sets in one expert overlap by Jaccard < 0.5 on average) and
// scaled to the layer's target, in random order inside each expert. The rate is
// set through the neuron's gate weight on a "massive activation" (one residual
// coordinate every embedding sets to a large constant): that weight offsets the
// pre-activation, so the neuron fires when its token-dependent part exceeds a
// threshold. The threshold comes from a calibration: synth runs the reference
// forward pass on the weights it is about to write (computed, not read), and
// before each layer's experts fits each neuron's offset to the distribution of
// its pre-activation over the calibration tokens. The reference then computes
// the written model exactly; `stc ref --stats` measures what it gives.
#pragma once

#include "Synth.h"
#include "SynthValues.h"

namespace stc {

struct SparsityTarget {
  bool paper = false;
  double fraction = 0; // with !paper: the dead share of every layer
};

// "paper", or a fraction in (0, 1) such as "0.8".
Status parseSparsityTarget(const std::string &text, SparsityTarget &out);

// The dead share layer `layer` of `layers` aims at. `paper`: 0.95 through the
// first quarter of the depth, down to 0.6 at the middle, 0.5 at the last layer
// (linear in between).
double deadTarget(const SparsityTarget &target, int64_t layer, int64_t layers);

// Each of `n` neurons' firing probability, for mean `rate`.
std::vector<double> neuronFiringRates(uint64_t seed, int64_t layer, int64_t n,
                                      double rate);

// How many calibration tokens synth runs (one sequence of seeded random ids).
constexpr int64_t kSparsityCalibrationTokens = 64;

// Fills `plan` for the checkpoint `o` describes (config `c`).
Status planSparsity(const SynthOptions &o, const ModelConfig &c,
                    const SparsityTarget &target, SparsityPlan &plan);

} // namespace stc
