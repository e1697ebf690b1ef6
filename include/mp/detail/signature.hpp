// mp/detail/signature.hpp - a callable's parameter types, when they are
// unique, and the types its arguments travel as.
//
// Params<F>::type is ParamList<P...> for a function pointer, a member-function
// pointer (its object first, as ObjectParam<C>), a class with one
// non-template operator(), and mp::Partial / mp::Inherited of those; it is
// UnknownParams for anything else (a generic lambda, an overload set).
//
// An argument A for a parameter P travels as wire_arg_t<P, A>: P without
// const and reference, except that a std::basic_string_view travels as the
// std::basic_string and a std::span<T> as a std::vector<T>; the object of a
// member function travels as the argument's own type (no slicing). For an
// unknown parameter it travels as std::decay_t<A>.
#pragma once

#include <cstddef>
#include <iterator>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace mp {
template <class F, class... Bound>
class Partial;
template <class F>
class Inherited;
}  // namespace mp

namespace mp::detail {

template <class... Ts>
struct ParamList {
  static constexpr std::size_t size = sizeof...(Ts);
};
struct UnknownParams {};
/// The object parameter of a member function of C.
template <class C>
struct ObjectParam {};

template <class F>
struct Params {
  using type = UnknownParams;
};
template <class R, class... Ps>
struct Params<R (*)(Ps...)> {
  using type = ParamList<Ps...>;
};
template <class R, class... Ps>
struct Params<R (*)(Ps...) noexcept> {
  using type = ParamList<Ps...>;
};

/// Parameters of a member-function pointer type M: Object is the object
/// parameter's type (ObjectParam<C>), Rest the declared parameters.
template <class M>
struct MemberParams {};
#define MP_DETAIL_MEMBER_PARAMS(QUAL)                        \
  template <class R, class C, class... Ps>                   \
  struct MemberParams<R (C::*)(Ps...) QUAL> {                \
    using object = ObjectParam<C>;                           \
    using rest = ParamList<Ps...>;                            \
  };                                                         \
  template <class R, class C, class... Ps>                   \
  struct MemberParams<R (C::*)(Ps...) QUAL noexcept> {       \
    using object = ObjectParam<C>;                           \
    using rest = ParamList<Ps...>;                            \
  };
MP_DETAIL_MEMBER_PARAMS()
MP_DETAIL_MEMBER_PARAMS(const)
MP_DETAIL_MEMBER_PARAMS(&)
MP_DETAIL_MEMBER_PARAMS(const&)
MP_DETAIL_MEMBER_PARAMS(&&)
MP_DETAIL_MEMBER_PARAMS(const&&)
#undef MP_DETAIL_MEMBER_PARAMS

template <class O, class L>
struct Prepend;
template <class O, class... Ps>
struct Prepend<O, ParamList<Ps...>> {
  using type = ParamList<O, Ps...>;
};

template <class M>
  requires std::is_member_function_pointer_v<M>
struct Params<M> {
  using type = typename Prepend<typename MemberParams<M>::object, typename MemberParams<M>::rest>::type;
};

/// A class with exactly one non-template operator() (a non-generic lambda).
template <class F>
  requires(std::is_class_v<F> && requires { &F::operator(); })
struct Params<F> {
  using type = typename MemberParams<decltype(&F::operator())>::rest;
};

template <std::size_t N, class L>
struct DropFront {
  using type = UnknownParams;  // fewer parameters than bound arguments
};
template <class L>
struct DropFront<0, L> {
  using type = L;
};
template <std::size_t N, class P, class... Ps>
  requires(N > 0)
struct DropFront<N, ParamList<P, Ps...>> {
  using type = typename DropFront<N - 1, ParamList<Ps...>>::type;
};

template <class F, class... Bound>
struct Params<mp::Partial<F, Bound...>> {
  using type = typename DropFront<sizeof...(Bound), typename Params<F>::type>::type;
};
template <class F>
struct Params<mp::Inherited<F>> {
  using type = typename Params<F>::type;
};

/// F's parameter types (ParamList) or UnknownParams.
template <class F>
using params_t = typename Params<std::remove_cvref_t<F>>::type;

/// The owning type a parameter type travels as.
template <class U>
struct WireOf {
  using type = U;
};
template <class C, class Tr>
struct WireOf<std::basic_string_view<C, Tr>> {
  using type = std::basic_string<C, Tr>;
};
template <class T, std::size_t N>
struct WireOf<std::span<T, N>> {
  using type = std::vector<std::remove_cv_t<T>>;
};

template <class P, class A>
struct WireArg {
  using type = typename WireOf<std::remove_cvref_t<P>>::type;
};
template <class C, class A>
struct WireArg<ObjectParam<C>, A> {
  using type = std::decay_t<A>;
};
template <class A>
struct WireArg<UnknownParams, A> {
  using type = std::decay_t<A>;
};

/// The type an argument A for the parameter P travels as.
template <class P, class A>
using wire_arg_t = typename WireArg<P, A>::type;

template <class L, class... As>
struct WireArgs {
  using type = ParamList<std::decay_t<As>...>;
};
template <class... Ps, class... As>
  requires(sizeof...(Ps) == sizeof...(As))
struct WireArgs<ParamList<Ps...>, As...> {
  using type = ParamList<wire_arg_t<Ps, As>...>;
};

/// The types the arguments As... of a call of F travel as (a ParamList).
template <class F, class... As>
using wire_args_t = typename WireArgs<params_t<F>, As...>::type;

/// Whether parameter P is a non-const lvalue reference (a write the caller
/// would never see).
template <class P>
inline constexpr bool is_out_param = std::is_lvalue_reference_v<P> && !std::is_const_v<std::remove_reference_t<P>>;

template <class L>
inline constexpr bool has_out_param = false;
template <class... Ps>
inline constexpr bool has_out_param<ParamList<Ps...>> = (is_out_param<Ps> || ...);

/// The item type map(f, range of T) sends: T converted to f's one parameter.
template <class F, class T, class L = params_t<F>>
struct MapItem {
  using type = T;
};
template <class F, class T, class P>
struct MapItem<F, T, ParamList<P>> {
  using type = wire_arg_t<P, T>;
};

template <class T, class L, class I = std::make_index_sequence<std::tuple_size<T>::value>>
struct StarItem;
template <class T, class... Ps, std::size_t... I>
struct StarItem<T, ParamList<Ps...>, std::index_sequence<I...>> {
  using converted = std::tuple<wire_arg_t<Ps, std::tuple_element_t<I, T>>...>;
  static constexpr bool same = (std::is_same_v<wire_arg_t<Ps, std::tuple_element_t<I, T>>,
                                               std::remove_cv_t<std::tuple_element_t<I, T>>> &&
                                ...);
  using type = std::conditional_t<same, T, converted>;  // a pair of matching types stays a pair
};

/// The item type starmap(f, range of tuple-like T) sends.
template <class F, class T, class L = params_t<F>>
struct StarmapItem {
  using type = T;
};
template <class F, class T, class... Ps>
  requires requires { std::tuple_size<T>::value; } && (std::tuple_size<T>::value == sizeof...(Ps))
struct StarmapItem<F, T, ParamList<Ps...>> {
  using type = typename StarItem<T, ParamList<Ps...>>::type;
};

template <bool Star, class F, class T>
using item_wire_t = typename std::conditional_t<Star, StarmapItem<F, T>, MapItem<F, T>>::type;

/// `a` as a W: a itself when it is one, else a W built from it (a range
/// such as a span becomes a vector of its elements; a tuple-like, a tuple).
template <class W, class A>
decltype(auto) as_wire(const A& a) {
  if constexpr (std::is_same_v<W, A>) {
    return (a);
  } else if constexpr (std::is_constructible_v<W, const A&>) {
    return W(a);
  } else if constexpr (requires { std::tuple_size<A>::value; }) {
    return [&]<std::size_t... I>(std::index_sequence<I...>) {
      return W(as_wire<std::tuple_element_t<I, W>>(std::get<I>(a))...);
    }(std::make_index_sequence<std::tuple_size<W>::value>{});
  } else {
    return W(std::begin(a), std::end(a));
  }
}

/// `a` (an element read from an input range) as a W, moved when it is one.
template <class W, class A>
W to_wire(A&& a) {
  if constexpr (std::is_same_v<W, std::remove_cvref_t<A>>) {
    return static_cast<W>(std::forward<A>(a));
  } else {
    return as_wire<W>(a);
  }
}

}  // namespace mp::detail
