// mp/partial.hpp - mp::partial (Python's functools.partial) and
// mp::inherited: the two ways to give a pool task state besides its
// arguments.
//
//   double score(const Model& m, int x);
//   auto r = pool.map(mp::partial(score, model), xs);           // model travels with each task message
//   auto s = pool.map(mp::partial(&Analyzer::score, an), xs);   // a member function with its object
//   auto t = pool.map(mp::inherited([&rows](std::size_t i) { return rows[i]; }), idx);  // see inherited()
//
// A Partial is encoded as its function (a FunctionId, a member-function id,
// or a sendable function object) followed by its bound arguments, through the
// codec: the task carries the arguments' values as they are when the task is
// submitted, whatever was made after the pool. A map sends the Partial once
// per chunk message, not once per item.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <tuple>
#include <type_traits>
#include <utility>

#include <mp/codec.hpp>
#include <mp/detail/function_id.hpp>
#include <mp/detail/signature.hpp>
#include <mp/detail/sendable.hpp>

namespace mp {

/// f with its first arguments bound (Python's functools.partial object).
/// Calling it calls f(bound..., args...). Copyable; a const Partial may be
/// called from several threads when f may.
template <class F, class... Bound>
class Partial {
public:
  Partial(F f, Bound... bound) : f_(std::move(f)), bound_(std::move(bound)...) {}

  template <class... A>
    requires std::invocable<const F&, const Bound&..., A...>
  decltype(auto) operator()(A&&... a) const {
    return std::apply([&](const Bound&... b) -> decltype(auto) { return std::invoke(f_, b..., std::forward<A>(a)...); },
                      bound_);
  }
  template <class... A>
    requires(std::invocable<F&, Bound&..., A...> && !std::invocable<const F&, const Bound&..., A...>)
  decltype(auto) operator()(A&&... a) {
    return std::apply([&](Bound&... b) -> decltype(auto) { return std::invoke(f_, b..., std::forward<A>(a)...); },
                      bound_);
  }

  /// The function (Python's partial.func). Never blocks.
  [[nodiscard]] const F& func() const noexcept { return f_; }
  /// The bound arguments (Python's partial.args). Never blocks.
  [[nodiscard]] const std::tuple<Bound...>& args() const noexcept { return bound_; }

private:
  F f_;
  std::tuple<Bound...> bound_;
};

namespace detail {

/// The types the first arguments As... bound to F travel as.
template <class L, class... As>
struct BoundWire {
  using type = ParamList<std::decay_t<As>...>;
};
template <class... Ps, class... As>
  requires(sizeof...(As) <= sizeof...(Ps))
struct BoundWire<ParamList<Ps...>, As...> {
  template <std::size_t... I>
  static auto pick(std::index_sequence<I...>)
      -> ParamList<wire_arg_t<std::tuple_element_t<I, std::tuple<Ps...>>, As>...>;
  using type = decltype(pick(std::index_sequence_for<As...>{}));
};

template <class Fn, class... Ws, class F, class... Args>
Partial<Fn, Ws...> make_partial(F&& f, ParamList<Ws...>, Args&&... args) {
  (check_argument<Ws>(), ...);
  return Partial<Fn, Ws...>(Fn(std::forward<F>(f)), to_wire<Ws>(std::forward<Args>(args))...);
}

/// How the function of a Partial travels: a member-function pointer as its
/// MemberFunctionId, anything else through its codec.
template <class F>
struct PartialFunc {
  static std::size_t size(const F& f) { return encoded_size(f); }
  static std::byte* encode(std::byte* out, const F& f) { return encode_to(out, f); }
  static F decode(Reader& r) { return r.read<F>(); }
};
template <member_function_pointer F>
struct PartialFunc<F> {
  static std::size_t size(const F&) { return sizeof(FunctionId) + sizeof(std::int64_t); }
  static std::byte* encode(std::byte* out, const F& f) {
    const MemberFunctionId id = member_function_id(f);
    return encode_to(out, id.fn, id.adj);
  }
  static F decode(Reader& r) {
    MemberFunctionId id{};
    id.fn = r.read<FunctionId>();
    id.adj = r.read<std::int64_t>();
    return resolve_member_function_as<F>(id);
  }
};

}  // namespace detail

/// Python's functools.partial: f with `args` bound in front of the call's
/// own arguments. f is a function pointer, a member-function pointer (the
/// first bound argument is then the object, sent by value: a member function
/// of its class, virtual or not, is called on the worker's copy), or any
/// sendable callable. Each bound argument is converted to f's parameter type
/// (a string literal to std::string, a span to a vector) and must be sendable.
/// A lambda with captures, a parameter `T&` (non-const), or an unsendable
/// argument is a compile error saying why. Never blocks; throws what copying
/// the arguments throws. Thread-safe.
template <class F, class... Args>
auto partial(F&& f, Args&&... args) {
  using Fn = std::decay_t<F>;
  if constexpr (!detail::member_function_pointer<Fn>) detail::check_callable<Fn>();
  detail::check_params<Fn>();
  using Wire = typename detail::BoundWire<detail::params_t<Fn>, Args...>::type;
  return detail::make_partial<Fn>(std::forward<F>(f), Wire{}, std::forward<Args>(args)...);
}

/// The codec of a Partial: its function, then each bound argument.
template <class F, class... Bound>
struct codec<Partial<F, Bound...>> {
  using P = Partial<F, Bound...>;
  static std::size_t size(const P& p) {
    return std::apply([&](const Bound&... b) { return (detail::PartialFunc<F>::size(p.func()) + ... +
                                                       detail::encoded_size(b)); },
                      p.args());
  }
  static std::byte* encode(std::byte* out, const P& p) {
    out = detail::PartialFunc<F>::encode(out, p.func());
    std::apply([&](const Bound&... b) { ((out = detail::encode_to(out, b)), ...); }, p.args());
    return out;
  }
  static P decode(detail::Reader& r) {
    F f = detail::PartialFunc<F>::decode(r);
    std::tuple<Bound...> b{r.read<Bound>()...};  // braces: read in order
    return std::apply([&](Bound&... x) { return P(std::move(f), std::move(x)...); }, b);
  }
};

/// A callable whose captured addresses are promised valid in the workers:
/// made by mp::inherited(f).
template <class F>
class Inherited {
public:
  explicit Inherited(F f) : f_(std::move(f)) {}

  template <class... A>
    requires std::invocable<const F&, A...>
  decltype(auto) operator()(A&&... a) const {
    return std::invoke(f_, std::forward<A>(a)...);
  }
  template <class... A>
    requires(std::invocable<F&, A...> && !std::invocable<const F&, A...>)
  decltype(auto) operator()(A&&... a) {
    return std::invoke(f_, std::forward<A>(a)...);
  }

  /// The wrapped callable. Never blocks.
  [[nodiscard]] const F& func() const noexcept { return f_; }

private:
  F f_;
};

/// Sends f, a lambda that captures references or pointers, as its bytes.
/// The promise the caller makes: every object f refers to was made BEFORE
/// the pool (so its workers, forked from this process, have it at the same
/// address) and is not changed after the pool was made, until the tasks
/// using f have finished (the workers see the memory as it was when they were
/// forked: later writes by the parent are not seen by them, and writes by a
/// worker are not seen by the parent or by other workers). An object made
/// after the pool, or one the parent changes meanwhile, gives the task
/// garbage or stale values. mp cannot check the promise; it holds only with
/// a forked backend (an MPI backend refuses mp::inherited at compile time,
/// see detail::is_inherited). For shared results, pass an mp::Array or
/// mp::Value as an argument instead. f must be trivially copyable. Never
/// blocks; thread-safe.
template <class F>
Inherited<std::decay_t<F>> inherited(F&& f) {
  static_assert(std::is_trivially_copyable_v<std::decay_t<F>>,
                "mp::inherited(f) sends f as its bytes, so f must be trivially copyable: capture references, "
                "pointers and plain values only (a std::string or std::vector captured by value owns memory: "
                "capture it by reference, or bind it with mp::partial).");
  return Inherited<std::decay_t<F>>(std::forward<F>(f));
}

/// The codec of an Inherited: the callable's object representation.
template <class F>
struct codec<Inherited<F>> {
  static std::size_t size(const Inherited<F>&) { return sizeof(F); }
  static std::byte* encode(std::byte* out, const Inherited<F>& w) {
    std::memcpy(out, static_cast<const void*>(&w.func()), sizeof(F));
    return out + sizeof(F);
  }
  static Inherited<F> decode(detail::Reader& r) { return Inherited<F>(r.read_raw<F>()); }
};

}  // namespace mp
