#!/usr/bin/env python3
"""Turn a kernels/cuda .cu file into C++ for the CPU emulator: dynamic shared
memory, the inline-asm helpers and the <<<>>> launches."""
import re, sys

src = open(sys.argv[1]).read()

# extern __shared__ float4 NAME[];
src = re.sub(r'extern __shared__ float4 (\w+)\[\];', r'float4 *\1 = (float4 *)emu_dyn_smem;', src)

BODIES = {
    r'void cp_async_unit<4>\(': '{ emu_cp_async(dst, src, 16, valid ? 16 : 0); }',
    r'void cp_async_unit<1>\(': '{ emu_cp_async(dst, src, 4, valid ? 4 : 0); }',
    r'void cp_async16\(': '{ emu_cp_async(dst, src, 16, valid ? 16 : 0); }',
    r'void cp_async_commit\(\)': '{ emu_cp_commit(); }',
    r'void cp_async_wait_all_but_one\(\)': '{ emu_cp_wait(1); }',
    r'void ldmatrix_x4\(': '{ emu_ldmatrix(r, smem, false); }',
    r'void ldmatrix_x4_trans\(': '{ emu_ldmatrix(r, smem, true); }',
    r'void mma_bf16_16816\(': '{ emu_mma_bf16(c, a, b0, b1); }',
}

def replace_body(src, sig, body):
    out, pos, n = [], 0, 0
    for m in re.finditer(r'__forceinline__ ' + sig, src):
        if m.start() < pos:
            continue
        i = src.index('{', m.end())
        # a declaration without a body ends with ';' before '{'
        if ';' in src[m.end():i]:
            continue
        depth, j = 0, i
        while True:
            if src[j] == '{': depth += 1
            elif src[j] == '}':
                depth -= 1
                if depth == 0: break
            j += 1
        out.append(src[pos:i]); out.append(body); pos = j + 1; n += 1
    out.append(src[pos:])
    return ''.join(out), n

for sig, body in BODIES.items():
    src, n = replace_body(src, sig, body)

# launches: NAME<tmpl><<<cfg>>>(args);
out, pos = [], 0
for m in re.finditer(r'([A-Za-z_]\w*(?:<[^<>;]*>)?)<<<', src):
    if m.start() < pos:
        continue
    name = m.group(1)
    j = src.index('>>>', m.end())
    cfg = src[m.end():j]
    k = j + 3
    assert src[k] == '('
    depth, e = 0, k
    while True:
        if src[e] == '(': depth += 1
        elif src[e] == ')':
            depth -= 1
            if depth == 0: break
        e += 1
    args = src[k + 1:e]
    parts, d, cur = [], 0, ''
    for ch in cfg:
        if ch in '([': d += 1
        if ch in ')]': d -= 1
        if ch == ',' and d == 0:
            parts.append(cur); cur = ''
        else:
            cur += ch
    parts.append(cur)
    while len(parts) < 3: parts.append('0')
    out.append(src[pos:m.start()])
    out.append('emu_launch(dim3(%s), dim3(%s), (size_t)(%s), [&]() { %s(%s); })' % (parts[0], parts[1], parts[2], name, args))
    pos = e + 1
out.append(src[pos:])
sys.stdout.write(''.join(out))
