// util.inspect and util.format as Node 20 prints them (the layout rules — depth 2, 80 columns,
// up to 3 inner levels on one line, array grouping, `<ref *1>` cycles — follow Node's
// lib/internal/util/inspect.js); util@0.12's are Node 0.x's, which packages' logs and error
// messages no longer match. Owns: turning values into text. Must not touch: anything else of util.
// Known gaps: colors, showProxy, Promise state and WeakMap/WeakSet entries (QuickJS cannot see
// them), string splitting at breakLength.
'use strict';

const customSymbol = Symbol.for('nodejs.util.inspect.custom');
const defaults = {
  showHidden: false, depth: 2, colors: false, customInspect: true, showProxy: false,
  maxArrayLength: 100, maxStringLength: 10000, breakLength: 80, compact: 3, sorted: false,
  getters: false, numericSeparator: false,
};
const kObjectType = 0;
const kArrayType = 1;
const kArrayExtrasType = 2;
const keyStrRegExp = /^[a-zA-Z_][a-zA-Z_0-9]*$/;
const meta = ['\\x00', '\\x01', '\\x02', '\\x03', '\\x04', '\\x05', '\\x06', '\\x07', '\\b', '\\t',
  '\\n', '\\x0B', '\\f', '\\r', '\\x0E', '\\x0F', '\\x10', '\\x11', '\\x12', '\\x13', '\\x14',
  '\\x15', '\\x16', '\\x17', '\\x18', '\\x19', '\\x1A', '\\x1B', '\\x1C', '\\x1D', '\\x1E', '\\x1F'];

function inspect(value, opts) {
  const ctx = Object.assign({}, defaults, { seen: [], indentationLvl: 0, currentDepth: 0, circular: new Map(), budget: {} });
  if (arguments.length > 2) {
    // Legacy signature: inspect(obj, showHidden, depth, colors).
    if (arguments[2] !== undefined) ctx.depth = arguments[2];
    if (arguments.length > 3 && arguments[3] !== undefined) ctx.colors = arguments[3];
  }
  if (typeof opts === 'boolean') ctx.showHidden = opts;
  else if (opts) for (const k of Object.keys(opts)) if (k in defaults || k === 'stylize') ctx[k] = opts[k];
  if (ctx.depth === null) ctx.depth = Infinity;
  if (ctx.maxArrayLength === null) ctx.maxArrayLength = Infinity;
  if (ctx.maxStringLength === null) ctx.maxStringLength = Infinity;
  return formatValue(ctx, value, 0, true);
}
inspect.custom = customSymbol;
inspect.defaultOptions = defaults;
inspect.colors = Object.create(null);
inspect.styles = Object.create(null);

function strEscape(str) {
  let quote = "'";
  if (str.includes("'")) {
    if (!str.includes('"')) quote = '"';
    else if (!str.includes('`') && !str.includes('${')) quote = '`';
  }
  let out = '';
  for (let i = 0; i < str.length; i++) {
    const c = str.charCodeAt(i);
    const ch = str[i];
    if (ch === quote || ch === '\\') out += '\\' + ch;
    else if (c < 32) out += meta[c];
    else if (c === 127) out += '\\x7F';
    else out += ch;
  }
  return quote + out + quote;
}

function formatNumber(n) {
  return Object.is(n, -0) ? '-0' : `${n}`;
}

function formatPrimitive(ctx, value) {
  switch (typeof value) {
    case 'string': {
      let trailer = '';
      if (value.length > ctx.maxStringLength) {
        const remaining = value.length - ctx.maxStringLength;
        value = value.slice(0, ctx.maxStringLength);
        trailer = `... ${remaining} more character${remaining > 1 ? 's' : ''}`;
      }
      return strEscape(value) + trailer;
    }
    case 'number': return formatNumber(value);
    case 'bigint': return `${value}n`;
    case 'boolean': return `${value}`;
    case 'undefined': return 'undefined';
    default: return value.toString(); // symbol
  }
}

function formatValue(ctx, value, recurseTimes, typedArray) {
  if (typeof value !== 'object' && typeof value !== 'function') return formatPrimitive(ctx, value);
  if (value === null) return 'null';
  if (ctx.customInspect) {
    const maybeCustom = value[customSymbol];
    // A prototype carrying the hook is printed as an object, not through its own hook.
    if (typeof maybeCustom === 'function' && maybeCustom !== inspect &&
        !(value.constructor && value.constructor.prototype === value)) {
      const depth = ctx.depth === Infinity ? ctx.depth : ctx.depth - recurseTimes;
      const options = Object.assign({}, ctx, { depth });
      const ret = maybeCustom.call(value, depth, options, inspect);
      if (ret !== value) {
        if (typeof ret !== 'string') return formatValue(ctx, ret, recurseTimes);
        return ret.replace(/\n/g, `\n${' '.repeat(ctx.indentationLvl)}`);
      }
    }
  }
  if (ctx.seen.includes(value)) {
    let index = 1;
    if (ctx.circular.has(value)) index = ctx.circular.get(value);
    else { index = ctx.circular.size + 1; ctx.circular.set(value, index); }
    return `[Circular *${index}]`;
  }
  return formatRaw(ctx, value, recurseTimes, typedArray);
}

function getConstructorName(obj) {
  let o = obj;
  while (o !== null && o !== undefined) {
    const d = Object.getOwnPropertyDescriptor(o, 'constructor');
    if (d && typeof d.value === 'function' && d.value.name !== '') return d.value.name;
    o = Object.getPrototypeOf(o);
  }
  return null;
}

function getPrefix(constructor, tag, fallback, size) {
  const sz = size === undefined ? '' : `(${size})`;
  if (constructor === null) {
    if (tag !== '' && fallback !== tag) return `[${fallback}${sz}: null prototype] [${tag}] `;
    return `[${fallback}${sz}: null prototype] `;
  }
  if (tag !== '' && constructor !== tag) return `${constructor}${sz} [${tag}] `;
  return `${constructor}${sz} `;
}

function getKeys(value, showHidden) {
  let keys;
  const symbols = Object.getOwnPropertySymbols(value);
  if (showHidden) {
    keys = Object.getOwnPropertyNames(value);
    if (symbols.length) keys = keys.concat(symbols);
  } else {
    keys = Object.keys(value);
    for (const s of symbols) if (Object.prototype.propertyIsEnumerable.call(value, s)) keys.push(s);
  }
  return keys;
}

function isTypedArray(v) {
  return ArrayBuffer.isView(v) && !(v instanceof DataView);
}

function fnBase(value, constructor, tag) {
  const src = Function.prototype.toString.call(value);
  if (src.startsWith('class') && /^class\s*[\s{A-Za-z_$]/.test(src)) {
    let base = `[class ${value.name || '(anonymous)'}`;
    if (constructor !== 'Function' && constructor !== null) base += ` [${constructor}]`;
    const sup = Object.getPrototypeOf(value);
    if (sup && sup.name) base += ` extends ${sup.name}`;
    return base + ']';
  }
  let type = 'Function';
  if (constructor === 'AsyncFunction' || constructor === 'GeneratorFunction' || constructor === 'AsyncGeneratorFunction') type = constructor;
  let base = `[${type}`;
  if (constructor === null) base += ' (null prototype)';
  base += value.name === '' ? ' (anonymous)' : `: ${value.name}`;
  base += ']';
  if (constructor !== type && constructor !== null) base += ` ${constructor}`;
  if (tag !== '' && constructor !== tag) base += ` [${tag}]`;
  return base;
}

function formatError(err, constructor, tag, ctx, keys) {
  const name = err.name != null ? String(err.name) : 'Error';
  const message = err.message != null ? String(err.message) : '';
  let stack = typeof err.stack === 'string' ? err.stack : '';
  // QuickJS's `stack` is only the frames; Node's starts with "Name: message".
  const head = message ? `${name}: ${message}` : name;
  if (!stack.startsWith(head)) stack = stack ? `${head}\n${stack.replace(/\n$/, '')}` : `[${head}]`;
  for (const k of ['cause', 'errors']) {
    const i = keys.indexOf(k);
    if (i === -1 && Object.prototype.hasOwnProperty.call(err, k) && !ctx.showHidden) keys.push(k);
  }
  if (constructor === null) stack = `[${name}: null prototype] ${stack}`;
  if (ctx.indentationLvl !== 0) stack = stack.replace(/\n/g, `\n${' '.repeat(ctx.indentationLvl)}`);
  return stack;
}

function formatRaw(ctx, value, recurseTimes, typedArray) {
  let keys;
  const constructor = getConstructorName(value);
  let tag = value[Symbol.toStringTag];
  if (typeof tag !== 'string' || (tag !== '' && (ctx.showHidden ? Object.prototype.hasOwnProperty : Object.prototype.propertyIsEnumerable).call(value, Symbol.toStringTag))) tag = '';
  let base = '';
  let formatter = () => [];
  let braces;
  let noIterator = true;
  let extrasType = kObjectType;
  let i = 0;

  if (value[Symbol.iterator] || constructor === null) {
    noIterator = false;
    if (Array.isArray(value)) {
      const prefix = (constructor !== 'Array' || tag !== '') ? getPrefix(constructor, tag, 'Array', `${value.length}`) : '';
      keys = getOwnNonIndexProperties(value, ctx.showHidden);
      braces = [`${prefix}[`, ']'];
      if (value.length === 0 && keys.length === 0) return `${braces[0]}]`;
      extrasType = kArrayExtrasType;
      formatter = formatArray;
    } else if (value instanceof Set) {
      const size = value.size;
      const prefix = getPrefix(constructor, tag, 'Set', `${size}`);
      keys = getKeys(value, ctx.showHidden);
      formatter = formatSet.bind(null, value);
      if (size === 0 && keys.length === 0) return `${prefix}{}`;
      braces = [`${prefix}{`, '}'];
    } else if (value instanceof Map) {
      const size = value.size;
      const prefix = getPrefix(constructor, tag, 'Map', `${size}`);
      keys = getKeys(value, ctx.showHidden);
      formatter = formatMap.bind(null, value);
      if (size === 0 && keys.length === 0) return `${prefix}{}`;
      braces = [`${prefix}{`, '}'];
    } else if (isTypedArray(value)) {
      keys = getOwnNonIndexProperties(value, ctx.showHidden);
      const fallback = Object.prototype.toString.call(value).slice(8, -1);
      const size = value.length;
      const prefix = getPrefix(constructor, tag, fallback, `${size}`);
      braces = [`${prefix}[`, ']'];
      if (value.length === 0 && keys.length === 0) return `${braces[0]}]`;
      formatter = formatTypedArray.bind(null, value, size);
      extrasType = kArrayExtrasType;
    } else {
      noIterator = true;
    }
  }
  if (noIterator) {
    keys = getKeys(value, ctx.showHidden);
    braces = ['{', '}'];
    const objTag = Object.prototype.toString.call(value);
    if (constructor === 'Object') {
      if (objTag === '[object Arguments]') braces[0] = '[Arguments] [';
      else if (tag !== '') braces[0] = `${getPrefix(constructor, tag, 'Object')}{`;
      if (objTag === '[object Arguments]') { extrasType = kArrayExtrasType; braces[1] = ']'; formatter = formatArrayLike; keys = keys.filter((k) => typeof k !== 'string' || !/^\d+$/.test(k)); if (value.length === 0 && keys.length === 0) return '[Arguments] []'; }
      else if (keys.length === 0) return `${braces[0]}}`;
    } else if (typeof value === 'function') {
      base = fnBase(value, constructor, tag);
      keys = keys.filter((k) => k !== 'prototype' || ctx.showHidden);
      if (keys.length === 0) return base;
    } else if (value instanceof RegExp) {
      base = RegExp.prototype.toString.call(value);
      const prefix = getPrefix(constructor, tag, 'RegExp');
      if (prefix !== 'RegExp ') base = `${prefix}${base}`;
      keys = keys.filter((k) => k !== 'lastIndex');
      if (keys.length === 0) return base;
    } else if (value instanceof Date) {
      base = Number.isNaN(value.getTime()) ? 'Invalid Date' : value.toISOString();
      const prefix = getPrefix(constructor, tag, 'Date');
      if (prefix !== 'Date ') base = `${prefix}${base}`;
      if (keys.length === 0) return base;
    } else if (value instanceof Error) {
      base = formatError(value, constructor, tag, ctx, keys);
      keys = keys.filter((k) => k !== 'stack' && k !== 'message');
      if (keys.length === 0) return base;
    } else if (value instanceof ArrayBuffer) {
      const bytes = Array.from(new Uint8Array(value).slice(0, 50), (b) => b.toString(16).padStart(2, '0')).join(' ');
      const more = value.byteLength > 50 ? ` ... ${value.byteLength - 50} more byte${value.byteLength - 50 > 1 ? 's' : ''}` : '';
      const prefix = getPrefix(constructor, tag, 'ArrayBuffer');
      if (typedArray === undefined) formatter = () => [`[Uint8Contents]: <${bytes}${more}>`, `byteLength: ${value.byteLength}`];
      else formatter = () => [`[Uint8Contents]: <${bytes}${more}>`];
      braces[0] = `${prefix}{`;
    } else if (value instanceof Promise) {
      braces[0] = `${getPrefix(constructor, tag, 'Promise')}{`;
      formatter = () => ['<unknown>'];
    } else if (value instanceof WeakSet || value instanceof WeakMap) {
      braces[0] = `${getPrefix(constructor, tag, value instanceof WeakSet ? 'WeakSet' : 'WeakMap')}{`;
      formatter = () => ['<items unknown>'];
    } else if (value instanceof Number || value instanceof String || value instanceof Boolean ||
               (typeof BigInt !== 'undefined' && value instanceof BigInt) || value instanceof Symbol) {
      const type = value instanceof Number ? 'Number' : value instanceof String ? 'String' : value instanceof Boolean ? 'Boolean' : value instanceof Symbol ? 'Symbol' : 'BigInt';
      const prim = value.valueOf();
      base = `[${type}${type !== constructor ? (constructor === null ? ' (null prototype)' : ` (${constructor})`) : ''}: ${formatPrimitive({ maxStringLength: Infinity }, prim)}]`;
      if (type === 'String') keys = keys.filter((k) => typeof k !== 'string' || !/^\d+$/.test(k) || Number(k) >= prim.length);
      if (keys.length === 0) return base;
    } else {
      if (keys.length === 0) return `${getCtxName(constructor, tag, 'Object')}{}`;
      braces[0] = `${getCtxName(constructor, tag, 'Object')}{`;
    }
  }

  if (recurseTimes > ctx.depth) {
    const name = getCtxName(constructor, tag, 'Object').slice(0, -1);
    return constructor !== null ? `[${name}]` : name;
  }
  recurseTimes += 1;
  ctx.seen.push(value);
  ctx.currentDepth = recurseTimes;
  let output;
  try {
    output = formatter(ctx, value, recurseTimes);
    for (i = 0; i < keys.length; i++) output.push(formatProperty(ctx, value, recurseTimes, keys[i], extrasType));
  } finally {
    ctx.seen.pop();
  }
  if (ctx.sorted) {
    const cmp = ctx.sorted === true ? undefined : ctx.sorted;
    if (extrasType === kObjectType) output.sort(cmp);
  }
  let res = reduceToSingleString(ctx, output, base, braces, extrasType, recurseTimes, value);
  if (ctx.circular.has(value)) res = `<ref *${ctx.circular.get(value)}> ${res}`;
  return res;
}

function getCtxName(constructor, tag, fallback) {
  if (constructor === null) return getPrefix(null, tag, fallback);
  return getPrefix(constructor, tag, fallback);
}

function getOwnNonIndexProperties(value, showHidden) {
  return getKeys(value, showHidden).filter((k) => typeof k !== 'string' || !/^(0|[1-9][0-9]*)$/.test(k) || Number(k) >= 4294967295);
}

function formatArrayLike(ctx, value, recurseTimes) {
  const output = [];
  for (let i = 0; i < value.length; i++) output.push(formatValue(ctx, value[i], recurseTimes));
  return output;
}

function formatArray(ctx, value, recurseTimes) {
  const valLen = value.length;
  const len = Math.min(Math.max(0, ctx.maxArrayLength), valLen);
  const remaining = valLen - len;
  const output = [];
  for (let i = 0; i < len; i++) {
    if (!Object.prototype.hasOwnProperty.call(value, i)) {
      // Holes: count the run, as Node does.
      let j = i;
      while (j < valLen && !Object.prototype.hasOwnProperty.call(value, j)) j++;
      const empty = j - i;
      output.push(`<${empty} empty item${empty > 1 ? 's' : ''}>`);
      i = j - 1;
      if (output.length >= len) break;
      continue;
    }
    output.push(formatProperty(ctx, value, recurseTimes, i, kArrayType));
  }
  if (remaining > 0) output.push(`... ${remaining} more item${remaining > 1 ? 's' : ''}`);
  return output;
}

function formatTypedArray(value, length, ctx, ignored, recurseTimes) {
  const maxLength = Math.min(Math.max(0, ctx.maxArrayLength), length);
  const remaining = value.length - maxLength;
  const output = new Array(maxLength);
  for (let i = 0; i < maxLength; ++i) output[i] = typeof value[i] === 'bigint' ? `${value[i]}n` : formatNumber(value[i]);
  if (remaining > 0) output[maxLength] = `... ${remaining} more item${remaining > 1 ? 's' : ''}`;
  if (ctx.showHidden) {
    ctx.indentationLvl += 2;
    for (const key of ['BYTES_PER_ELEMENT', 'length', 'byteLength', 'byteOffset', 'buffer']) {
      output.push(`[${key}]: ${formatValue(ctx, value[key], recurseTimes, true)}`);
    }
    ctx.indentationLvl -= 2;
  }
  return output;
}

function formatSet(value, ctx, ignored, recurseTimes) {
  const output = [];
  ctx.indentationLvl += 2;
  for (const v of value) output.push(formatValue(ctx, v, recurseTimes));
  ctx.indentationLvl -= 2;
  return output;
}

function formatMap(value, ctx, ignored, recurseTimes) {
  const output = [];
  ctx.indentationLvl += 2;
  for (const [k, v] of value) output.push(`${formatValue(ctx, k, recurseTimes)} => ${formatValue(ctx, v, recurseTimes)}`);
  ctx.indentationLvl -= 2;
  return output;
}

function formatProperty(ctx, value, recurseTimes, key, type) {
  let name, str;
  const desc = Object.getOwnPropertyDescriptor(value, key) || { value: value[key], enumerable: true };
  if (desc.value !== undefined) {
    ctx.indentationLvl += 2;
    str = formatValue(ctx, desc.value, recurseTimes);
    ctx.indentationLvl -= 2;
  } else if (desc.get !== undefined) {
    str = desc.set !== undefined ? '[Getter/Setter]' : '[Getter]';
  } else if (desc.set !== undefined) {
    str = '[Setter]';
  } else {
    str = 'undefined';
  }
  if (type === kArrayType) return str;
  if (typeof key === 'symbol') name = `[${key.toString()}]`;
  else if (key === '__proto__') name = "['__proto__']";
  else if (desc.enumerable === false) name = `[${keyStrRegExp.test(key) ? key : strEscape(key)}]`;
  else if (keyStrRegExp.test(key)) name = key;
  else name = strEscape(key);
  return `${name}: ${str}`;
}

function isBelowBreakLength(ctx, output, start, base) {
  let totalLength = output.length + start;
  if (totalLength + output.length > ctx.breakLength) return false;
  for (let i = 0; i < output.length; i++) {
    totalLength += output[i].length;
    if (totalLength > ctx.breakLength) return false;
  }
  return base === '' || !base.includes('\n');
}

function groupArrayElements(ctx, output, value) {
  let totalLength = 0;
  let maxLength = 0;
  let i = 0;
  let outputLength = output.length;
  if (ctx.maxArrayLength < output.length) outputLength--;
  const separatorSpace = 2;
  const dataLen = new Array(outputLength);
  for (; i < outputLength; i++) {
    const len = output[i].length;
    dataLen[i] = len;
    totalLength += len + separatorSpace;
    if (maxLength < len) maxLength = len;
  }
  const actualMax = maxLength + separatorSpace;
  if (actualMax * 3 + ctx.indentationLvl < ctx.breakLength &&
      (totalLength / actualMax > 5 || maxLength <= 6)) {
    const approxCharHeights = 2.5;
    const averageBias = Math.sqrt(actualMax - totalLength / output.length);
    const biasedMax = Math.max(actualMax - 3 - averageBias, 1);
    const columns = Math.min(
      Math.round(Math.sqrt(approxCharHeights * biasedMax * outputLength) / biasedMax),
      Math.floor((ctx.breakLength - ctx.indentationLvl) / actualMax),
      ctx.compact * 4,
      15,
    );
    if (columns <= 1) return output;
    const tmp = [];
    const maxLineLength = [];
    for (let c = 0; c < columns; c++) {
      let lineLength = 0;
      for (let j = c; j < output.length; j += columns) if (dataLen[j] > lineLength) lineLength = dataLen[j];
      maxLineLength.push(lineLength + separatorSpace);
    }
    let padStart = true;
    if (value !== undefined) {
      for (let k = 0; k < output.length; k++) {
        if (typeof value[k] !== 'number' && typeof value[k] !== 'bigint') { padStart = false; break; }
      }
    }
    for (let k = 0; k < outputLength; k += columns) {
      const max = Math.min(k + columns, outputLength);
      let str = '';
      let j = k;
      for (; j < max - 1; j++) {
        const padding = maxLineLength[j - k];
        str += padStart ? `${output[j]}, `.padStart(padding, ' ') : `${output[j]}, `.padEnd(padding, ' ');
      }
      if (padStart) str += output[j].padStart(maxLineLength[j - k] - separatorSpace, ' ');
      else str += output[j];
      tmp.push(str);
    }
    if (ctx.maxArrayLength < output.length) tmp.push(output[outputLength]);
    output = tmp;
  }
  return output;
}

function reduceToSingleString(ctx, output, base, braces, extrasType, recurseTimes, value) {
  if (ctx.compact !== true) {
    if (typeof ctx.compact === 'number' && ctx.compact >= 1) {
      const entries = output.length;
      if (extrasType === kArrayExtrasType && entries > 6) output = groupArrayElements(ctx, output, value);
      if (ctx.currentDepth - recurseTimes < ctx.compact && entries === output.length) {
        const start = output.length + ctx.indentationLvl + braces[0].length + base.length + 10;
        if (isBelowBreakLength(ctx, output, start, base)) {
          const joined = output.join(', ');
          if (!joined.includes('\n')) return `${base ? `${base} ` : ''}${braces[0]} ${joined} ${braces[1]}`;
        }
      }
    }
    const indentation = `\n${' '.repeat(ctx.indentationLvl)}`;
    return `${base ? `${base} ` : ''}${braces[0]}${indentation}  ${output.join(`,${indentation}  `)}${indentation}${braces[1]}`;
  }
  if (isBelowBreakLength(ctx, output, 0, base)) {
    return `${braces[0]}${base ? ` ${base}` : ''} ${output.join(', ')} ${braces[1]}`;
  }
  const indentation = `\n${' '.repeat(ctx.indentationLvl)}`;
  const ln = base === '' && braces[0].length === 1 ? ' ' : `${base ? ` ${base}` : ''}\n${indentation}  `;
  return `${braces[0]}${ln}${output.join(`,\n${indentation}  `)} ${braces[1]}`;
}

const builtInObjects = new Set(Object.getOwnPropertyNames(globalThis).filter((k) => /^[A-Z][a-zA-Z0-9]+$/.test(k)));

// Node prints objects with `%s` through inspect unless they bring their own toString.
function hasBuiltInToString(value) {
  if (typeof value.toString !== 'function') return true;
  if (Object.prototype.hasOwnProperty.call(value, 'toString')) return false;
  let pointer = value;
  do { pointer = Object.getPrototypeOf(pointer); } while (pointer !== null && !Object.prototype.hasOwnProperty.call(pointer, 'toString'));
  if (pointer === null) return true;
  const d = Object.getOwnPropertyDescriptor(pointer, 'constructor');
  return d !== undefined && typeof d.value === 'function' && builtInObjects.has(d.value.name);
}

function tryStringify(arg) {
  try {
    return JSON.stringify(arg);
  } catch (err) {
    if (err instanceof TypeError && /circular|cyclic/i.test(err.message)) return '[Circular]';
    throw err;
  }
}

function formatWithOptions(inspectOptions, ...args) {
  const first = args[0];
  let a = 0;
  let str = '';
  let join = '';
  if (typeof first === 'string') {
    if (args.length === 1) return first;
    let tempStr;
    let lastPos = 0;
    for (let i = 0; i < first.length - 1; i++) {
      if (first.charCodeAt(i) === 37) { // '%'
        const nextChar = first.charCodeAt(++i);
        if (a + 1 !== args.length) {
          switch (nextChar) {
            case 115: { // 's'
              const tempArg = args[++a];
              if (typeof tempArg === 'number') tempStr = formatNumber(tempArg);
              else if (typeof tempArg === 'bigint') tempStr = `${tempArg}n`;
              else if (typeof tempArg !== 'object' || tempArg === null || !hasBuiltInToString(tempArg)) tempStr = String(tempArg);
              else tempStr = inspect(tempArg, Object.assign({}, inspectOptions, { depth: 0, colors: false, compact: 3 }));
              break;
            }
            case 106: tempStr = tryStringify(args[++a]); break; // 'j'
            case 100: { // 'd'
              const n = args[++a];
              if (typeof n === 'bigint') tempStr = `${n}n`;
              else if (typeof n === 'symbol') tempStr = 'NaN';
              else tempStr = formatNumber(Number(n));
              break;
            }
            case 79: tempStr = inspect(args[++a], inspectOptions); break; // 'O'
            case 111: tempStr = inspect(args[++a], Object.assign({}, inspectOptions, { showHidden: true, showProxy: true, depth: 4 })); break; // 'o'
            case 105: { // 'i'
              const n = args[++a];
              if (typeof n === 'bigint') tempStr = `${n}n`;
              else if (typeof n === 'symbol') tempStr = 'NaN';
              else tempStr = formatNumber(parseInt(n));
              break;
            }
            case 102: { // 'f'
              const n = args[++a];
              tempStr = typeof n === 'symbol' ? 'NaN' : formatNumber(parseFloat(n));
              break;
            }
            case 99: a += 1; tempStr = ''; break; // 'c'
            case 37: str += first.slice(lastPos, i); lastPos = i + 1; continue; // '%'
            default: continue;
          }
          if (lastPos !== i - 1) str += first.slice(lastPos, i - 1);
          str += tempStr;
          lastPos = i + 1;
        } else if (nextChar === 37) {
          str += first.slice(lastPos, i);
          lastPos = i + 1;
        }
      }
    }
    if (lastPos !== 0) {
      a++;
      join = ' ';
      if (lastPos < first.length) str += first.slice(lastPos);
    }
  }
  while (a < args.length) {
    const value = args[a];
    str += join;
    str += typeof value !== 'string' ? inspect(value, inspectOptions) : value;
    join = ' ';
    a++;
  }
  return str;
}

function format(...args) {
  return formatWithOptions(undefined, ...args);
}

module.exports = { inspect, format, formatWithOptions };
