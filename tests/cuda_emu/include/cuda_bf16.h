#pragma once
#include "cuda_runtime.h"
struct __nv_bfloat16 { uint16_t v; };
struct __nv_bfloat162 { uint16_t x, y; };
inline uint16_t emu_bf16_rn(float f)
{
    uint32_t u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((u >> 16) | 0x40u);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
inline __nv_bfloat16 __float2bfloat16_rn(float f) { __nv_bfloat16 r = {emu_bf16_rn(f)}; return r; }
inline uint16_t __bfloat16_as_ushort(__nv_bfloat16 h) { return h.v; }
inline __nv_bfloat162 __floats2bfloat162_rn(float a, float b) { __nv_bfloat162 r = {emu_bf16_rn(a), emu_bf16_rn(b)}; return r; }
