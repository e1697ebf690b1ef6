// mp/detail/handle_access.hpp - how mp reaches a shared-memory primitive's
// handles (its private mp_handle_fields_() and HandleTag constructor), and
// the concept that recognises such a primitive. Kept apart from
// shared_object.hpp so that code which only asks "is this a primitive?"
// (machine_local.hpp, in every Pool) does not compile the shared-memory
// mapping behind it.
#pragma once

#include <utility>

namespace mp::detail {

struct HandleTag {};

/// Reaches a primitive's private handle fields and HandleTag constructor.
struct HandleAccess {
  template <class T>
  static auto fields(const T& t) noexcept -> decltype(t.mp_handle_fields_()) {
    return t.mp_handle_fields_();
  }
  template <class T, class... H>
  static T make(H&&... h) {
    return T(HandleTag{}, std::forward<H>(h)...);
  }
};

/// A primitive made of shared-object handles (Lock, Value, ...).
template <class T>
concept shared_handle = requires(const T& t) { HandleAccess::fields(t); };

}  // namespace mp::detail
