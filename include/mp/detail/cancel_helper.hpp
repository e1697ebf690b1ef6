// mp/detail/cancel_helper.hpp - the WaitHelper of a backend whose waiters
// cannot read results themselves (ThreadBackend): it only forwards
// AsyncResult::cancel to the backend. MpiBackend's waiters do poll MPI:
// its MpiHelper (mpi_backend.hpp) derives from this one and adds help().
#pragma once

#include <mutex>

#include <mp/detail/backend.hpp>

namespace mp::detail {

/// What a future of Backend's tasks calls to cancel them. Outlives the
/// backend (futures may), so the backend detaches it when it ends.
template <class Backend>
class CancelHelper : public WaitHelper {
public:
  explicit CancelHelper(Backend* b) noexcept : backend_(b) {}
  bool help() noexcept override { return false; }
  /// Backend::cancel(s, running); false once detached or if it threw.
  bool cancel(const Sink* s, bool running) noexcept override {
    std::lock_guard lock(mu_);
    if (backend_ == nullptr) return false;
    try {
      return backend_->cancel(s, running);
    } catch (...) {
      return false;
    }
  }
  void detach() noexcept {
    std::lock_guard lock(mu_);
    backend_ = nullptr;
  }

protected:
  std::recursive_mutex mu_;  // a cancelled task's callback may cancel another
  Backend* backend_;  ///< guarded by mu_; null once detached
};

}  // namespace mp::detail
