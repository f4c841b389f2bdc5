// A stable colour per participant name, for cursors and the people list.
const PALETTE = ['#d1495b', '#00798c', '#edae49', '#66a182', '#8d5a97', '#2e4057', '#e07a5f', '#3d5a80']

export function colourFor (name: string): { color: string, colorLight: string } {
  let hash = 0
  for (const ch of name) hash = (hash * 31 + ch.codePointAt(0)!) >>> 0
  const color = PALETTE[hash % PALETTE.length]
  return { color, colorLight: color + '33' }
}
