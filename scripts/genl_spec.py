#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""A generic netlink YAML spec (Documentation/netlink/specs/) against the
UAPI header and the kernel's policy.

  genl_spec.py check SPEC INCLUDE_DIR
      The compiler reads the UAPI header: every attribute, command and
      constant of the spec must have the value the spec gives it there,
      and the header's *_MAX the last one. Exit status 1 if not.

  genl_spec.py policy SPEC
      Prints the policy the spec describes as a C table (struct
      spec_attr, below), for a test to compare with the policy the
      running kernel reports (CTRL_CMD_GETPOLICY).

The spec is read with python3-yaml; nothing here parses C.
"""
import os
import subprocess
import sys
import tempfile

import yaml

# NL_ATTR_TYPE_* of <linux/netlink.h>, by spec type
NL_TYPES = {
    'flag': 'NL_ATTR_TYPE_FLAG',
    'u8': 'NL_ATTR_TYPE_U8',
    'u16': 'NL_ATTR_TYPE_U16',
    'u32': 'NL_ATTR_TYPE_U32',
    'u64': 'NL_ATTR_TYPE_U64',
    'binary': 'NL_ATTR_TYPE_BINARY',
    'string': 'NL_ATTR_TYPE_NUL_STRING',
    'nest': 'NL_ATTR_TYPE_NESTED',
}
TYPE_MAX = {'u8': 0xff, 'u16': 0xffff, 'u32': 0xffffffff,
            'u64': 0xffffffffffffffff}
LIMITS = {'s32-max': 0x7fffffff, 'u32-max': 0xffffffff,
          'u16-max': 0xffff, 'u8-max': 0xff}


def c_name(name):
    return name.upper().replace('-', '_')


class Spec:
    def __init__(self, path):
        with open(path) as f:
            self.y = yaml.safe_load(f)
        self.consts = {}
        self.flags = {}
        for d in self.y.get('definitions', []):
            if d['type'] == 'const':
                self.consts[d['name']] = d['value']
            elif d['type'] == 'flags':
                mask = 0
                for i, e in enumerate(d.get('entries', [])):
                    mask |= 1 << e.get('value', i) if isinstance(e, dict) \
                        else 1 << i
                self.flags[d['name']] = mask
        self.sets = {s['name']: s for s in self.y['attribute-sets']}

    def prefix(self):
        return c_name(self.y['name']) + '_'

    def value(self, v):
        if isinstance(v, int):
            return v
        if v in LIMITS:
            return LIMITS[v]
        return self.consts[v]

    def attrs(self, aset):
        """(value, attribute) of a set; subsets take their parent's values"""
        s = self.sets[aset]
        if 'subset-of' in s:
            parent = dict((a['name'], (v, a))
                          for v, a in self.attrs(s['subset-of']))
            return [(parent[a['name']][0], parent[a['name']][1])
                    for a in s['attributes']]
        out, v = [], 1
        for a in s['attributes']:
            v = a.get('value', v)
            out.append((v, a))
            v += 1
        return out

    def set_prefix(self, aset):
        s = self.sets[aset]
        if 'subset-of' in s:
            return self.set_prefix(s['subset-of'])
        return c_name(s.get('name-prefix', self.y['name'] + '-a-' +
                            aset + '-'))

    def ops(self):
        out, v = [], 1
        for op in self.y['operations']['list']:
            v = op.get('value', v)
            out.append((v, op))
            v += 1
        return out

    def op_prefix(self):
        return c_name(self.y['operations'].get('name-prefix',
                                               self.y['name'] + '-cmd-'))

    def requested(self):
        """attribute sets and attributes the kernel must accept"""
        want = {}
        for _, op in self.ops():
            for kind in ('do', 'dump'):
                req = op.get(kind, {}).get('request', {})
                for name in req.get('attributes', []):
                    want.setdefault(op['attribute-set'], set()).add(name)
        # a nest in a request takes its whole set with it
        todo = list(want)
        while todo:
            aset = todo.pop()
            for _, a in self.attrs(aset):
                if a['name'] in want[aset] and a.get('nested-attributes'):
                    sub = a['nested-attributes']
                    if sub not in want:
                        want[sub] = set(x['name'] for _, x in
                                        self.attrs(sub))
                        todo.append(sub)
        return want


def check(spec, incdir):
    """compiles a program that prints each value the spec names"""
    names = []
    for aset in spec.sets:
        if 'subset-of' in spec.sets[aset]:
            continue
        pre = spec.set_prefix(aset)
        attrs = spec.attrs(aset)
        for v, a in attrs:
            names.append((pre + c_name(a['name']), v))
        s = spec.sets[aset]
        if 'attr-max-name' in s:
            names.append((c_name(s['attr-max-name']), attrs[-1][0]))
    ops = spec.ops()
    for v, op in ops:
        names.append((spec.op_prefix() + c_name(op['name']), v))
    names.append((spec.op_prefix() + 'MAX', ops[-1][0]))
    for name, v in spec.consts.items():
        names.append((spec.prefix() + c_name(name), v))
    src = '#include <stdio.h>\n#include <%s>\nint main(void)\n{\n' % \
        spec.y.get('uapi-header', 'linux/%s.h' % spec.y['name'])
    for name, _ in names:
        src += '\tprintf("%s %%llu\\n", (unsigned long long)(%s));\n' % \
            (name, name)
    src += '\tprintf("%%s\\n", %s);\n' % c_name(spec.y['c-family-name'])
    src += '\tprintf("%%d\\n", %s);\n\treturn 0;\n}\n' % \
        c_name(spec.y['c-version-name'])
    with tempfile.TemporaryDirectory() as tmp:
        c = os.path.join(tmp, 'spec.c')
        exe = os.path.join(tmp, 'spec')
        with open(c, 'w') as f:
            f.write(src)
        cc = subprocess.run(['cc', '-I', incdir, '-o', exe, c],
                            capture_output=True, text=True)
        if cc.returncode:
            print('genl_spec: the header lacks what the spec names:',
                  file=sys.stderr)
            print(cc.stderr, file=sys.stderr)
            return 1
        out = subprocess.run([exe], capture_output=True, text=True,
                             check=True).stdout.split('\n')
    bad = 0
    for (name, want), line in zip(names, out):
        got = int(line.split()[1])
        if got != want:
            print('genl_spec: %s is %d in the header, %d in the spec' %
                  (name, got, want), file=sys.stderr)
            bad = 1
    if out[len(names)] != spec.y['name']:
        print('genl_spec: family name %s in the header, %s in the spec' %
              (out[len(names)], spec.y['name']), file=sys.stderr)
        bad = 1
    if int(out[len(names) + 1]) != spec.y.get('version', 1):
        print('genl_spec: version %s in the header, %s in the spec' %
              (out[len(names) + 1], spec.y.get('version', 1)),
              file=sys.stderr)
        bad = 1
    return bad


def policy(spec):
    want = spec.requested()
    print('/* Generated by scripts/genl_spec.py from the YAML spec. */')
    print('struct spec_attr {')
    print('\tconst char *set, *name;')
    print('\tunsigned int value;')
    print('\tint accepted;\t\t/* in the kernel\'s policy */')
    print('\tint type;\t\t/* NL_ATTR_TYPE_* */')
    print('\tunsigned long long min, max, mask;')
    print('\tint has_mask;')
    print('\tunsigned int min_len, max_len;')
    print('\tconst char *nested;\t/* the set inside */')
    print('};')
    print('')
    print('static const char spec_top[] = "%s";' %
          spec.y['operations']['list'][0]['attribute-set'])
    print('static const struct spec_attr spec_attrs[] = {')
    for aset in spec.sets:
        if 'subset-of' in spec.sets[aset] and aset not in want:
            continue
        for v, a in spec.attrs(aset):
            t = a['type']
            if t in ('unused', 'pad'):
                continue
            checks = a.get('checks', {})
            mn = spec.value(checks.get('min', 0))
            mx = spec.value(checks.get('max', TYPE_MAX.get(t, 0)))
            mask = 0
            has_mask = 'flags-mask' in checks
            if has_mask:
                mask = spec.flags[checks['flags-mask']]
            min_len = spec.value(checks.get('min-len',
                                 checks.get('exact-len', 0)))
            max_len = spec.value(checks.get('max-len',
                                 checks.get('exact-len', 0)))
            nested = a.get('nested-attributes')
            print('\t{ "%s", "%s", %d, %d, %s, %dull, %dull, %dull, %d, %d, %d, %s },'
                  % (aset, a['name'], v,
                     1 if a['name'] in want.get(aset, ()) else 0,
                     NL_TYPES[t], mn, mx, mask, has_mask, min_len, max_len,
                     '"%s"' % nested if nested else 'NULL'))
    print('};')
    return 0


def main():
    if len(sys.argv) == 4 and sys.argv[1] == 'check':
        return check(Spec(sys.argv[2]), sys.argv[3])
    if len(sys.argv) == 3 and sys.argv[1] == 'policy':
        return policy(Spec(sys.argv[2]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == '__main__':
    sys.exit(main())
