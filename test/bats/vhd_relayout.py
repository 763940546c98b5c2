# vhd_relayout.py IN OUT ORDER: IN, a dynamic VHD with 2 MiB blocks, written
# again with its dynamic header (h), BAT (t) and blocks (b) in file order
# ORDER ("tbh", "bth", ...), offsets and checksums fixed; the disk unchanged.
import struct, sys
src, dst, order = sys.argv[1], sys.argv[2], sys.argv[3]
d = open(src, 'rb').read()
ft = bytearray(d[-512:])
dh_off = struct.unpack('>Q', ft[16:24])[0]
dh = bytearray(d[dh_off:dh_off + 1024])
bat_off = struct.unpack('>Q', dh[16:24])[0]
n, bs = struct.unpack('>II', dh[28:36])
bat = [struct.unpack('>I', d[bat_off + 4*i:bat_off + 4*i + 4])[0] for i in range(n)]
blen = bs + 512  # bitmap of one sector for 2 MiB blocks
batlen = (4 * n + 511) // 512 * 512
pos, place = 512, {}
for c in order:
    place[c] = pos
    pos += {'h': 1024, 't': batlen, 'b': blen * sum(e != 0xFFFFFFFF for e in bat)}[c]
out = bytearray(pos + 512)
newbat, p = [], place['b']
for e in bat:
    if e == 0xFFFFFFFF:
        newbat.append(e)
        continue
    out[p:p + blen] = d[e * 512:e * 512 + blen]
    newbat.append(p // 512)
    p += blen
t = b''.join(struct.pack('>I', e) for e in newbat)
out[place['t']:place['t'] + batlen] = t + b'\xff' * (batlen - len(t))
dh[16:24] = struct.pack('>Q', place['t'])
dh[36:40] = b'\0' * 4
dh[36:40] = struct.pack('>I', ~sum(dh) & 0xffffffff)
out[place['h']:place['h'] + 1024] = dh
ft[16:24] = struct.pack('>Q', place['h'])
ft[64:68] = b'\0' * 4
ft[64:68] = struct.pack('>I', ~sum(ft) & 0xffffffff)
out[0:512] = ft
out[-512:] = ft
open(dst, 'wb').write(out)
