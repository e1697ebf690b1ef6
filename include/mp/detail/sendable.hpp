// mp/detail/sendable.hpp - what a pool may send to a worker, checked at
// compile time: the callable (function pointer, captureless lambda,
// mp::partial, mp::inherited, or a type with a declared codec), its
// parameters, and each argument and result type. Every refusal is a
// static_assert whose message shows the rewrite.
#pragma once

#include <type_traits>

#include <mp/codec.hpp>
#include <mp/detail/signature.hpp>

namespace mp::detail {

/// True when F can travel to a worker.
template <class F>
concept SendableCallable = Sendable<std::decay_t<F>>;

/// Whether F is an mp::inherited(...) wrapper: its state is sent as raw
/// bytes, valid only in processes forked after it was made. A backend whose
/// workers are not forked from the caller static_asserts !is_inherited<F>.
template <class F>
inline constexpr bool is_inherited = false;
template <class F>
inline constexpr bool is_inherited<mp::Inherited<F>> = true;

template <class F>
inline constexpr bool is_partial = false;
template <class F, class... Bound>
inline constexpr bool is_partial<mp::Partial<F, Bound...>> = true;

/// A lambda with no lambda-capture (C++20: exactly the default-constructible
/// closures): there is no state; the worker default-constructs it.
template <class F>
concept captureless = std::is_empty_v<F> && std::is_default_constructible_v<F> && std::is_trivially_copyable_v<F>;

/// A type whose author declared what it sends (serialize, save/load, codec).
template <class F>
concept declared_codec = codec_specialized<F> || member_serialize<F> || member_save_load<F> || free_serialize<F>;

/// Compile-time check that F may be sent to a worker; the message shows the
/// rewrite, and F shows in the instantiation note.
template <class F>
constexpr void check_callable() {
  using D = std::remove_cvref_t<F>;
  if constexpr (function_pointer<D> || captureless<D> || declared_codec<D> || is_partial<D> || is_inherited<D>) {
  } else if constexpr (std::is_empty_v<D> && std::is_trivially_copyable_v<D> && !std::is_aggregate_v<D>) {
    static_assert(always_false<D>,
                  "mp::Pool cannot send this lambda: it captures nothing but has a capture-default ([&] or [=]), "
                  "which makes it a closure that mp cannot recreate in the worker. Drop the capture-default: "
                  "write [](int x) { ... } instead of [&](int x) { ... }.");
  } else if constexpr (!std::is_aggregate_v<D>) {
    static_assert(always_false<D>,
                  "mp::Pool cannot send a lambda with captures (nor a non-aggregate class without a serialize "
                  "member): mp cannot see what it holds, and a captured reference, pointer or this would reach the "
                  "worker as an address that means nothing there. Bind the captured values with mp::partial: "
                  "write pool.map(mp::partial(f, s), xs) where f takes the captured value s as its first "
                  "parameter (or mp::partial(&Class::method, object)); pass mp::Value/mp::Array handles as "
                  "arguments; or, for objects made before the pool and unchanged since, wrap the lambda in "
                  "mp::inherited(...).");
  }
  static_assert(SendableCallable<D>,
                "mp::Pool cannot send this callable to a worker process: it is not a function pointer, a "
                "captureless lambda, an mp::partial, nor a function object that is an aggregate of sendable "
                "fields or has a serialize(Archive&) member or an mp::codec specialization.");
}

/// Compile-time check of F's parameter types (when they are known).
template <class F>
constexpr void check_params() {
  static_assert(!has_out_param<params_t<F>>,
                "mp::Pool cannot call a function with a non-const lvalue reference parameter (such as "
                "void f(int&)) in a worker: the worker writes to its own copy, which the caller never sees. "
                "Results come back through the return value: return what the function computes, take the "
                "parameter by value or const&, or write into an mp::Value/mp::Array passed as an argument.");
}

template <class T>
constexpr void check_argument() {
  static_assert(Sendable<T>,
                "mp::Pool cannot send this argument or result type between processes: it is not trivially "
                "copyable, not a supported standard container, and has no serialize(Archive&) member or "
                "mp::codec<T> specialization. Add one of those (see <mp/codec.hpp>).");
}

}  // namespace mp::detail
