// Tier 4: invariance, for every model the library trains, on 1 and 2 threads (docs/checkpoints.md
// "What is guaranteed"):
//  - evaluation does not depend on batching: the ranks of the validation and test cases are the
//    same evaluated all at once, from a shifted start, in reverse order and in groups of uneven
//    sizes;
//  - a run interrupted after an epoch and resumed from its latest.ckpt ends bit for bit where an
//    uninterrupted run with the same thread count ends: weights, epoch logs, test metrics and
//    the final checkpoint's optimiser state.
// The models: SASRec (recbole, pmixer), BERT4Rec (recbole, hf), STAMP (recbole,
// alkdrec_simplified), FPMC (recbole, session), Atten-Mixer (alkdrec, official), profile
// distillation over SASRec and BERT4Rec (interrupted before fine_tune_epoch and after it), and
// active distillation's fine-tuning (STAMP from pre-trained weights, the weighted pairwise loss
// over rows with weights and session groups). Tiny planted data: each case runs in well under a
// second. (A resume under another thread count is refused: checkpoint_test.cpp.)
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "../common/resume.hpp"
#include "../common/sessions.hpp"
#include "../common/test_util.hpp"
#include "recdistill/backend/cpu/backend.hpp"
#include "recdistill/train/sequential_trainer.hpp"

namespace RD_TEST_FILE {  // each test file's own names (tests/CMakeLists.txt: unity builds)

using namespace recdistill;
using B = cpu::Backend;

namespace {

// One model under test: its config, data, profiles (profile distillation) and starting weights
// (fine-tuning), and the epochs after which the resume check interrupts the run.
template <class Family>
struct Subject {
  using Config = typename Family::Config;
  Config cfg;
  data::Split split;
  std::shared_ptr<const ProfileTargets> profiles;
  std::vector<float> init;  // empty: the model's own initialisation
  std::vector<int> interrupt_after = {3};

  SequentialTrainer<B, float, Family> trainer(const Config& c) const {
    SequentialTrainer<B, float, Family> t(c, split, profiles);
    if (!init.empty()) t.params() = init;
    return t;
  }
};

// The shared schedule: 5 epochs, validation every 2nd and after the last, no early stop.
// Batches of 64 windows of 10: the weight gradients' products sum over 640 rows, more than one
// block of Eigen's multi-threaded GEMM, so 2 threads give other bits than 1 (every model but
// FPMC, whose products are too small to be threaded, when this was written): the 2-thread case
// is not the 1-thread one in disguise.
template <class C>
void schedule(C& c) {
  c.seed = 5;
  c.training.batch_size = 64;
  c.training.epochs = 5;
  c.training.eval_every = 2;
  c.training.patience = 100;
  c.training.learning_rate = 3e-3;
  c.eval.ks = {10};
  c.training.valid_metric = "NDCG@10";
}

// Session models: 8 steps of 64 distinct rows an "epoch" (the ALKDRec protocol's iterations).
template <class C>
void session_schedule(C& c) {
  schedule(c);
  c.session.max_len = 10;
  c.session.hidden = 16;
  c.training.schedule = "iterations";
  c.training.steps_per_epoch = 8;
  c.training.learning_rate = 1e-2;
}

data::Split sequences() { return data::to_split(test::synthetic(180, 40, 12, 3)); }
data::Split sessions() { return test::planted_sessions(300, 150, 4); }

// SASRec's and BERT4Rec's shape: 2 blocks of 16 units with 2 heads over windows of 10, dropout.
template <class M>
void small_transformer(M& m, double dropout) {
  m.max_len = 10;
  m.hidden = 16;
  m.layers = m.heads = 2;
  m.inner = 32;
  m.hidden_dropout = m.attn_dropout = dropout;
}

Subject<SASRecFamily> sasrec(SASRecVariant v) {
  Subject<SASRecFamily> s;
  auto& m = s.cfg.sasrec;
  m.variant = v;
  small_transformer(m, 0.2);
  if (v == SASRecVariant::pmixer) m.inner = 16;  // its feed-forward is hidden x hidden
  m.ln_eps = v == SASRecVariant::pmixer ? 1e-8 : 1e-12;
  schedule(s.cfg);
  s.split = sequences();
  return s;
}

template <class Config>
void small_bert4rec(Config& c, BERT4RecVariant v) {
  auto& m = c.bert4rec;
  m.variant = v;
  small_transformer(m, 0.1);
  m.mask_ratio = 0.3;
  m.ft_ratio = v == BERT4RecVariant::hf ? 0.0 : 0.5;  // mask-last rows too, for recbole
  schedule(c);
}

Subject<BERT4RecFamily> bert4rec(BERT4RecVariant v) {
  Subject<BERT4RecFamily> s;
  small_bert4rec(s.cfg, v);
  s.split = sequences();
  return s;
}

Subject<STAMPFamily> stamp(STAMPVariant v) {
  Subject<STAMPFamily> s;
  s.cfg.session.variant = v;
  const bool alkd = v == STAMPVariant::alkdrec_simplified;
  s.cfg.session.rows = alkd ? SessionRows::last : SessionRows::prefixes;
  s.cfg.session.loss = alkd ? SessionLoss::inbatch_bpr : SessionLoss::ce;
  session_schedule(s.cfg);
  s.split = sessions();
  return s;
}

// FPMC `recbole`: leave-one-out users, every prefix a row, bpr with a drawn negative per step.
Subject<FPMCFamily> fpmc(FPMCVariant v) {
  Subject<FPMCFamily> s;
  session_schedule(s.cfg);
  s.cfg.session.variant = v;
  s.split = v == FPMCVariant::recbole ? sequences() : sessions();
  if (v == FPMCVariant::recbole) {
    s.cfg.session.n_users = s.split.n_users;
    s.cfg.session.max_len = 1;
    s.cfg.session.rows = SessionRows::prefixes;
    s.cfg.session.loss = FPMCLoss::bpr;
    s.cfg.training.schedule = "epochs";
  }
  return s;
}

// `alkdrec`: dropout and bce_multi negatives (drawn per step); `official`: per-item dropout,
// its own CE over normalised rows, weight decay and a step learning-rate schedule.
Subject<AttenMixerFamily> attenmixer(AttenMixerVariant v) {
  Subject<AttenMixerFamily> s;
  session_schedule(s.cfg);
  auto& m = s.cfg.session;
  m.variant = v;
  m.heads = 2;
  m.dropout = 0.1;
  if (v == AttenMixerVariant::alkdrec) {
    m.intent_levels = 10;
    m.lp_exponent = 1;
    m.bce_negatives = 3;
  } else {
    m.intent_levels = 7;
    m.lp_exponent = 4;
    m.loss = SessionLoss::ce;
    s.cfg.training.weight_decay = 1e-5;
    s.cfg.training.lr_schedule = "step";
    s.cfg.training.lr_step_size = 20;
    s.cfg.training.lr_gamma = 0.5;
  }
  s.split = sessions();
  return s;
}

// Profile distillation: D = 8 profiles (every 7th user without one) through a learned
// projection, distilling until epoch 3; the resume is interrupted before the fine-tuning phase
// (after epoch 2: the resumed run enters it) and inside it (after epoch 4: it re-enters it).
template <class Family>
void distil(Subject<Family>& s) {
  auto p = std::make_shared<ProfileTargets>();
  p->K = 1;
  p->D = 8;
  for (int32_t u = 0; u < s.split.n_users; ++u) {
    p->available.push_back(u != 0 && u % 7 != 0);
    for (int j = 0; j < p->D; ++j) p->values.push_back(float(std::sin(0.37 * u + 1.3 * j)));
  }
  s.profiles = p;
  auto& k = s.cfg.distill;
  k.fine_tune_epoch = 3;
  k.alpha = 0.4;
  k.reconstruction_layer = 0;
  k.weighting_scheme = "exponential";
  k.weight_scale = 0.1;
  s.interrupt_after = {2, 4};
}

Subject<SASRecLLMFamily> sasrec_distilled() {
  Subject<SASRecLLMFamily> s;
  const auto plain = sasrec(SASRecVariant::recbole);
  s.cfg = plain.cfg;
  s.split = plain.split;
  distil(s);
  return s;
}

Subject<BERT4RecLLMFamily> bert4rec_distilled() {
  Subject<BERT4RecLLMFamily> s;
  small_bert4rec(s.cfg, BERT4RecVariant::recbole);
  s.split = sequences();
  distil(s);
  s.cfg.distill.reconstruction_layer = 1;
  return s;
}

// Active distillation's fine-tuning: STAMP pre-trained on the sessions (2 epochs), then trained
// from those weights on the distillation rows (weighted pairwise loss; weights by answer
// position, rows of a session one group), as `recdistill alkd` does with training.init_weights.
Subject<STAMPFamily> alkd_fine_tuning() {
  auto pre = stamp(STAMPVariant::alkdrec_simplified);
  pre.cfg.training.epochs = 2;
  auto student = pre.trainer(pre.cfg);
  student.fit();
  Subject<STAMPFamily> s = pre;
  s.init.assign(student.params().begin(), student.params().end());
  s.split = test::distilled_sessions(pre.split, true, 3);
  s.cfg.training.epochs = 5;
  s.cfg.session.loss = SessionLoss::weighted_pairwise;
  s.cfg.training.valid_metric = "HR@10";
  return s;
}

// The trainer's ranks of the validation and test cases, all at once, must equal their ranks in
// other groupings: a shifted start (other block boundaries), reverse order (other block-mates
// and positions) and consecutive groups of uneven sizes (1, 3, 7, ..., 127, 255 cases: smaller
// than one evaluation block of kEvalBlock = 128 cases, and spanning two).
template <class Family>
void ranks_do_not_depend_on_batching(const Subject<Family>& s) {
  auto cfg = s.cfg;
  cfg.training.epochs = 1;  // weights away from their initialisation
  auto t = s.trainer(cfg);
  t.fit();
  auto cases = eval_cases(s.split.valid, &s.split.train);
  const auto test_cases = eval_cases(s.split.test, &s.split.train);
  cases.insert(cases.end(), test_cases.begin(), test_cases.end());
  ASSERT_GT(cases.size(), size_t(2 * eval::kEvalBlock) + 37);
  const auto all = t.rank(cases);
  const size_t n = cases.size();
  const std::vector<eval::Case> shifted(cases.begin() + 37, cases.end());
  const auto part = t.rank(shifted);
  for (size_t i = 0; i < shifted.size(); ++i) ASSERT_EQ(part[i], all[i + 37]) << "shifted, case " << i + 37;
  const std::vector<eval::Case> reversed(cases.rbegin(), cases.rend());
  const auto back = t.rank(reversed);
  for (size_t i = 0; i < n; ++i) ASSERT_EQ(back[n - 1 - i], all[i]) << "reversed, case " << i;
  size_t start = 0;
  for (size_t size = 1; start < n; start += size, size = 2 * size + 1) {
    const std::vector<eval::Case> group(cases.begin() + long(start), cases.begin() + long(std::min(n, start + size)));
    const auto got = t.rank(group);
    for (size_t i = 0; i < group.size(); ++i) ASSERT_EQ(got[i], all[start + i]) << "group of " << size << ", case " << start + i;
  }
}

template <class Family>
void resume_is_bit_for_bit(const Subject<Family>& s) {
  for (const int k : s.interrupt_after) {
    SCOPED_TRACE(cat("interrupted after epoch ", k));
    test::expect_resume_bit_for_bit([&] { return s.trainer(s.cfg); }, k);
  }
}

enum class Check { batching, resume };

// The backend's thread count (Eigen's and OpenMP's) for a scope; 1 again after it.
struct Threads {
  explicit Threads(int n) { B::set_threads(n); }
  ~Threads() { B::set_threads(1); }
};

// A model of the table: its name and its checks, run with a thread count.
struct Model {
  std::string name;
  std::function<void(int threads, Check)> run;
};

template <class Family>
Model model(std::string name, std::function<Subject<Family>()> subject) {
  return {std::move(name), [subject](int threads, Check check) {
            // The count is the backend's and the run's runtime.threads, which the checkpoint
            // records and a resume must match.
            const Threads scope(threads);
            Subject<Family> s = subject();
            s.cfg.runtime.threads = threads;
            if (check == Check::batching)
              ranks_do_not_depend_on_batching(s);
            else
              resume_is_bit_for_bit(s);
          }};
}

const std::vector<Model>& models() {
  static const std::vector<Model> all = {
      model<SASRecFamily>("SASRecRecbole", [] { return sasrec(SASRecVariant::recbole); }),
      model<SASRecFamily>("SASRecPmixer", [] { return sasrec(SASRecVariant::pmixer); }),
      model<BERT4RecFamily>("BERT4RecRecbole", [] { return bert4rec(BERT4RecVariant::recbole); }),
      model<BERT4RecFamily>("BERT4RecHf", [] { return bert4rec(BERT4RecVariant::hf); }),
      model<STAMPFamily>("STAMPRecbole", [] { return stamp(STAMPVariant::recbole); }),
      model<STAMPFamily>("STAMPAlkdrecSimplified", [] { return stamp(STAMPVariant::alkdrec_simplified); }),
      model<FPMCFamily>("FPMCRecbole", [] { return fpmc(FPMCVariant::recbole); }),
      model<FPMCFamily>("FPMCSession", [] { return fpmc(FPMCVariant::session); }),
      model<AttenMixerFamily>("AttenMixerAlkdrec", [] { return attenmixer(AttenMixerVariant::alkdrec); }),
      model<AttenMixerFamily>("AttenMixerOfficial", [] { return attenmixer(AttenMixerVariant::official); }),
      model<SASRecLLMFamily>("SASRecProfileDistillation", sasrec_distilled),
      model<BERT4RecLLMFamily>("BERT4RecProfileDistillation", bert4rec_distilled),
      model<STAMPFamily>("AlkdFineTuning", alkd_fine_tuning),
  };
  return all;
}

}  // namespace

class EveryModel : public ::testing::TestWithParam<std::tuple<size_t, int>> {
 protected:
  void run(Check check) { models()[std::get<0>(GetParam())].run(std::get<1>(GetParam()), check); }
};

TEST_P(EveryModel, RanksDoNotDependOnBatching) { run(Check::batching); }
TEST_P(EveryModel, ResumeIsBitForBit) { run(Check::resume); }

INSTANTIATE_TEST_SUITE_P(Invariance, EveryModel,
                         ::testing::Combine(::testing::Range(size_t(0), models().size()), ::testing::Values(1, 2)),
                         [](const auto& info) {
                           const int threads = std::get<1>(info.param);
                           return cat(models()[std::get<0>(info.param)].name, "_", threads, "Thread",
                                      threads == 1 ? "" : "s");
                         });

}  // namespace RD_TEST_FILE
