"""Word lists and text folding for the ``sensitive_words`` processor.

Folding turns text into what the automaton matches, one original character at a
time so that every folded character maps back to the character it came from:

- NFKC, then casefold: full-width and half-width forms and letter case are one
  (``ＢＡＤ``, ``BaD`` and ``bad`` fold alike; ``ß`` folds to ``ss``);
- with ``traditional``, traditional Chinese characters become simplified ones
  (``媽`` -> ``妈``), character by character (see the table at the end);
- separators are dropped, so ``b a d``, ``b.a.d``, ``b*a*d`` (or with zero-width spaces)
  and ``笨 蛋`` fold like ``bad`` and ``笨蛋``: whitespace, punctuation (``_``, ``-``, ``.``,
  apostrophes), symbols (``*``, ``$``), control and format characters (zero-width
  spaces, soft hyphens) and combining diacritical marks (strike-through letters).

Words and phrases are folded the same way, so a list needs no variants of case,
width or spacing. Word-list files are UTF-8, one word or phrase per line; blank
lines and lines starting with ``#`` are ignored.
"""

from __future__ import annotations

import unicodedata
from bisect import bisect_right
from itertools import accumulate
from pathlib import Path

__all__ = [
    "FoldIndex",
    "FoldTable",
    "encode_char",
    "fold_table",
    "is_combining",
    "is_hard_gap",
    "is_invisible",
    "is_separator",
    "is_spaced_word_char",
    "read_word_file",
]

#: Unicode categories whose characters never hide a word: spaces, controls and format characters,
#: punctuation, symbols.
_SEPARATOR_CATEGORIES = frozenset(
    {"Zs", "Zl", "Zp", "Cc", "Cf", "Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po", "Sm", "Sc", "Sk", "So"}
)

#: Combining marks that decorate Latin, Greek and Cyrillic letters (strike-through and "Zalgo" text),
#: and variation selectors; marks that are part of a script's spelling (Indic vowel signs) are kept.
_COMBINING_RANGES = (
    (0x0300, 0x036F),
    (0x1AB0, 0x1AFF),
    (0x1DC0, 0x1DFF),
    (0x20D0, 0x20FF),
    (0xFE00, 0xFE0F),
    (0xFE20, 0xFE2F),
    (0xE0100, 0xE01EF),
)

#: Scripts written without spaces between words: a word in them has no word boundaries to respect.
_UNSPACED_RANGES = (
    (0x0E00, 0x0EFF),  # Thai, Lao
    (0x1000, 0x109F),  # Myanmar
    (0x1100, 0x11FF),  # Hangul Jamo
    (0x1780, 0x17FF),  # Khmer
    (0x2E80, 0xA4CF),  # CJK radicals and punctuation, kana, bopomofo, CJK ideographs, Yi
    (0xAC00, 0xD7AF),  # Hangul syllables
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0xFF66, 0xFFDC),  # half-width katakana and Hangul
    (0x20000, 0x3FFFF),  # CJK extensions
)

#: Apostrophes join words ("he'll"), so like whitespace they are a real gap between letters.
_APOSTROPHES = frozenset("'\u2018\u2019\uff07")


def _in_ranges(code: int, ranges: tuple[tuple[int, int], ...]) -> bool:
    return any(low <= code <= high for low, high in ranges)


def is_separator(char: str) -> bool:
    """Whether ``char`` is dropped before matching (it cannot hide a word)."""
    return unicodedata.category(char) in _SEPARATOR_CATEGORIES or _in_ranges(ord(char), _COMBINING_RANGES)


def is_combining(char: str) -> bool:
    """A combining mark that decorates the letter before it (strike-through, accents, variation selectors)."""
    return _in_ranges(ord(char), _COMBINING_RANGES)


def is_invisible(char: str) -> bool:
    """Zero-width and combining characters: not a word boundary, whatever is on their other side."""
    return unicodedata.category(char) == "Cf" or _in_ranges(ord(char), _COMBINING_RANGES)


def is_hard_gap(char: str) -> bool:
    """Whitespace and apostrophes: between two words, not inside one (``pen is``, ``he'll``)."""
    return char.isspace() or char in _APOSTROPHES


def is_spaced_word_char(char: str) -> bool:
    """A letter or digit of a script that separates words with spaces (Latin, Greek, Cyrillic, ...)."""
    return char.isalnum() and not _in_ranges(ord(char), _UNSPACED_RANGES)


def _cacheable(code: int) -> bool:
    """Unassigned and private-use code points are not kept in the tables: text made of them
    could otherwise grow the process-wide tables by a million entries."""
    return unicodedata.category(chr(code)) not in ("Cn", "Co")


class _LengthTable(dict[int, str]):
    """``str.translate`` table: code point -> ``chr(len(folded text))``."""

    def __init__(self, fold: FoldTable) -> None:
        super().__init__()
        self.fold = fold

    def __missing__(self, code: int) -> str:
        length = chr(len(self.fold[code] or ""))
        if _cacheable(code):
            self[code] = length
        return length


class FoldTable(dict[int, str | None]):
    """``str.translate`` table: code point -> folded text (``None``: dropped), each entry computed once.

    With ``encoded``, every non-ASCII character of the folded text is spelled as two symbols of
    the private-use area, its code point's high and low byte: see :func:`encode_char`.
    """

    def __init__(self, *, traditional: bool, encoded: bool) -> None:
        super().__init__()
        self.traditional = traditional
        self.encoded = encoded
        self.lengths = _LengthTable(self)

    def __missing__(self, code: int) -> str | None:
        char = chr(code)
        folded: str | None = None
        if not is_separator(char):
            text = unicodedata.normalize("NFKC", char).casefold()
            if self.traditional:
                text = text.translate(_T2S)
            # NFKC can bring separators of its own ("⑴" -> "(1)"): drop those too.
            kept = [c for c in text if not is_separator(c)]
            folded = "".join(map(encode_char, kept) if self.encoded else kept) or None
        if _cacheable(code):
            self[code] = folded
        return folded


def encode_char(char: str) -> str:
    """ASCII as is; any other character as two symbols, ``U+E000 + code // 256`` then ``U+F100 + code % 256``.

    pyahocorasick keeps a trie node's children in an unsorted array and scans it at every step.
    With thousands of Chinese words the root has thousands of children, so each character of
    Chinese text costs a scan of thousands; spelled in bytes, no node has more than 256 (5x the
    throughput on bench/sensitive_words.py). The two ranges are disjoint and every non-ASCII
    character of the text is spelled this way (private-use ones too), so a match always starts
    and ends on whole characters.
    """
    code = ord(char)
    if code < 0x80:
        return char
    return chr(0xE000 + (code >> 8)) + chr(0xF100 + (code & 0xFF))


_TABLES = {
    (traditional, encoded): FoldTable(traditional=traditional, encoded=encoded)
    for traditional in (False, True)
    for encoded in (False, True)
}


def fold_table(*, traditional: bool, encoded: bool = False) -> FoldTable:
    """The shared fold table (process-wide: entries only ever depend on the character)."""
    return _TABLES[traditional, encoded]


class FoldIndex:
    """Where each character of ``text.translate(table)`` came from: ``index[folded position]`` is the
    position in ``text``. Built at C speed (a translate to per-character lengths, then running sums);
    each look-up is a binary search, and only a hit's few characters are ever looked up."""

    def __init__(self, text: str, table: FoldTable) -> None:
        # Folded lengths are at most 2 x 18 (NFKC of U+FDFA, two symbols a character): one latin-1 byte.
        self._ends = list(accumulate(text.translate(table.lengths).encode("latin-1")))

    def __len__(self) -> int:
        return self._ends[-1] if self._ends else 0

    def __getitem__(self, position: int) -> int:
        if not 0 <= position < len(self):
            raise IndexError(position)
        return bisect_right(self._ends, position)


def read_word_file(path: Path) -> list[str]:
    """The words of a word-list file: one per line, blank lines and ``#`` comment lines skipped."""
    words = []
    for line in path.read_text(encoding="utf-8-sig").splitlines():
        word = line.strip()
        if word and not word.startswith("#"):
            words.append(word)
    return words


# Traditional -> simplified, one character to one, as pairs: 2445 characters of OpenCC's
# TSCharacters.txt (Apache-2.0, https://github.com/BYVoid/OpenCC) whose traditional form is in Big5
# and whose first simplified candidate is in GB2312 -- the characters people actually type.
# Context-dependent characters take OpenCC's first candidate (乾 -> 干); both the words and the
# text fold through the same table, so that choice cannot make a listed word unmatchable.
_TRADITIONAL_TO_SIMPLIFIED = (
    "丟丢並并乾干亂乱亙亘亞亚佇伫佈布佔占併并來来侖仑侶侣侷局俁俣係系俠侠俬私倀伥倆俩倉仓個个們们倖幸倫伦偉伟側侧"
    "偵侦偽伪傑杰傖伧傘伞備备傢家傭佣傯偬傳传傴伛債债傷伤傾倾僂偻僅仅僉佥僑侨僕仆僥侥僨偾僱雇價价儀仪儂侬億亿儈侩"
    "儉俭儐傧儔俦儕侪儘尽償偿優优儲储儷俪儺傩儻傥儼俨兇凶兌兑兒儿兗兖內内兩两冊册冑胄冪幂凈净凍冻凜凛凱凯別别刪删"
    "剄刭則则剋克剎刹剛刚剝剥剮剐剴剀創创剷铲劃划劄札劇剧劉刘劊刽劌刿劍剑劑剂勁劲動动務务勛勋勝胜勞劳勢势勱劢勳勋"
    "勵励勸劝勻匀匭匦匯汇匱匮區区協协卹恤卻却厙厍厤历厭厌厲厉厴厣參参叢丛吒咤吳吴吶呐呂吕咼呙員员唄呗唚吣唸念問问"
    "啞哑啟启喚唤喪丧喫吃喬乔單单喲哟嗆呛嗇啬嗎吗嗚呜嗩唢嗶哔嘆叹嘍喽嘔呕嘖啧嘗尝嘜唛嘩哗嘮唠嘯啸嘰叽嘵哓嘸呒噁恶"
    "噓嘘噠哒噥哝噦哕噯嗳噲哙噴喷噸吨噹当嚀咛嚇吓嚌哜嚐尝嚕噜嚙啮嚥咽嚦呖嚨咙嚮向嚳喾嚴严嚶嘤囀啭囁嗫囂嚣囅冁囈呓"
    "囌苏囑嘱囪囱圇囵國国圍围園园圓圆圖图團团埡垭埰采執执堅坚堊垩堝埚堯尧報报場场塊块塋茔塏垲塒埘塗涂塚冢塢坞塤埙"
    "塵尘塹堑墊垫墜坠墮堕墳坟墾垦壇坛壎埙壓压壘垒壙圹壚垆壞坏壟垄壢坜壩坝壯壮壺壶壽寿夠够夢梦夥伙夾夹奐奂奧奥奩奁"
    "奪夺奮奋奼姹妝妆姍姗姦奸娛娱婁娄婦妇婭娅媧娲媯妫媼媪媽妈嫋袅嫗妪嫵妩嫻娴嬈娆嬋婵嬌娇嬙嫱嬡嫒嬤嬷嬪嫔嬰婴嬸婶"
    "孃娘孌娈孫孙學学孿孪宮宫寀采寢寝實实寧宁審审寫写寬宽寵宠寶宝將将專专尋寻對对導导尷尴屆届屍尸屜屉屢屡層层屨屦"
    "屬属岡冈峴岘島岛峽峡崍崃崑昆崗岗崙仑崢峥嵐岚嶁嵝嶄崭嶇岖嶗崂嶠峤嶧峄嶸嵘嶺岭嶼屿嶽岳巋岿巒峦巔巅巖岩巰巯巹卺"
    "帥帅師师帳帐帶带幀帧幃帏幗帼幘帻幟帜幣币幫帮幬帱幹干幾几庫库廁厕廂厢廄厩廈厦廕荫廚厨廝厮廟庙廠厂廡庑廢废廣广"
    "廩廪廬庐廳厅弒弑弔吊弳弪張张強强彆别彈弹彌弥彎弯彔录彙汇彥彦彫雕彿佛後后徑径從从徠徕復复徵征徹彻恆恒恥耻悅悦"
    "悵怅悶闷悽凄惡恶惱恼惲恽惻恻愛爱愜惬愨悫愴怆愷恺愾忾慄栗態态慍愠慘惨慚惭慟恸慣惯慪怄慫怂慮虑慳悭慶庆慼戚慾欲"
    "憂忧憊惫憐怜憑凭憒愦憚惮憤愤憫悯憮怃憲宪憶忆懇恳應应懌怿懍懔懞蒙懟怼懣懑懨恹懲惩懶懒懷怀懸悬懺忏懼惧懾慑戀恋"
    "戇戆戔戋戧戗戩戬戰战戲戏戶户扞捍拋抛拏拿拚拼挾挟捨舍捫扪捱挨捲卷掃扫掄抡掙挣掛挂採采揀拣揚扬換换揮挥揹背損损"
    "搖摇搗捣搧扇搶抢摑掴摜掼摟搂摯挚摳抠摶抟摺折摻掺撈捞撐撑撓挠撟挢撣掸撥拨撫抚撲扑撳揿撻挞撾挝撿捡擁拥擄掳擇择"
    "擊击擋挡擔担據据擠挤擣捣擬拟擯摈擰拧擱搁擲掷擴扩擷撷擺摆擻擞擼撸擾扰攄摅攆撵攏拢攔拦攖撄攙搀攛撺攜携攝摄攢攒"
    "攣挛攤摊攪搅攬揽敗败敘叙敵敌數数斂敛斃毙斕斓斬斩斲斫斷断於于旂旗昇升時时晉晋晝昼暈晕暉晖暢畅暫暂暱昵曄晔曆历"
    "曇昙曉晓曏向曖暧曠旷曬晒書书會会朧胧朮术東东枴拐柵栅柺拐桿杆梔栀條条梟枭棄弃棖枨棗枣棟栋棧栈棲栖椏桠楊杨楓枫"
    "楨桢業业極极榦干榪杩榮荣榿桤構构槍枪槓杠槧椠槨椁槳桨樁桩樂乐樅枞樑梁樓楼標标樞枢樣样樸朴樹树樺桦橈桡橋桥機机"
    "橢椭橫横檁檩檉柽檔档檜桧檢检檣樯檯台檳槟檸柠檻槛櫃柜櫓橹櫚榈櫛栉櫝椟櫞橼櫟栎櫥橱櫧槠櫨栌櫪枥櫫橥櫬榇櫱蘖櫳栊"
    "櫸榉櫻樱欄栏權权欏椤欒栾欖榄欞棂欽钦歎叹歐欧歟欤歡欢歲岁歷历歸归歿殁殘残殞殒殤殇殫殚殭僵殮殓殯殡殲歼殺杀殼壳"
    "毀毁毆殴毿毵氂牦氈毡氌氇氣气氫氢氬氩氳氲氾泛汎泛汙污決决沒没沖冲況况泝溯洩泄洶汹浹浃涇泾涼凉淒凄淚泪淥渌淨净"
    "淩凌淪沦淵渊淶涞淺浅渙涣減减渦涡測测渾浑湊凑湞浈湧涌湯汤溈沩準准溝沟溫温溼湿滄沧滅灭滌涤滎荥滬沪滯滞滲渗滷卤"
    "滸浒滾滚滿满漁渔漚沤漢汉漣涟漬渍漲涨漵溆漸渐漿浆潁颍潑泼潔洁潛潜潤润潯浔潰溃潷滗潿涠澀涩澆浇澇涝澗涧澠渑澤泽"
    "澩泶澮浍澱淀濁浊濃浓濕湿濘泞濛蒙濟济濤涛濫滥濬浚濰潍濱滨濺溅濼泺濾滤瀅滢瀆渎瀉泻瀋沈瀏浏瀕濒瀘泸瀝沥瀟潇瀠潆"
    "瀦潴瀧泷瀨濑瀰弥瀲潋瀾澜灃沣灄滠灑洒灕漓灘滩灝灏灣湾灤滦灩滟災灾為为烏乌烴烃無无煉炼煒炜煙烟煢茕煥焕煩烦煬炀"
    "熒荧熗炝熱热熾炽燁烨燄焰燈灯燉炖燒烧燙烫燜焖營营燦灿燬毁燭烛燴烩燻熏燼烬燾焘爍烁爐炉爛烂爭争爺爷爾尔牆墙牘牍"
    "牠它牴抵牽牵犖荦犛牦犢犊犧牺狀状狹狭狽狈猙狰猶犹猻狲獃呆獄狱獅狮獎奖獨独獪狯獫猃獰狞獲获獵猎獷犷獸兽獺獭獻献"
    "獼猕玀猡現现琱雕琺珐琿珲瑋玮瑣琐瑤瑶瑩莹瑪玛瑯琅璉琏璣玑璦瑷環环璽玺璿璇瓊琼瓏珑瓔璎瓚瓒甌瓯甕瓮產产畝亩畢毕"
    "畫画異异當当疇畴疊叠痙痉痠酸痾疴瘋疯瘍疡瘓痪瘞瘗瘡疮瘧疟瘺瘘療疗癆痨癇痫癉瘅癒愈癘疠癟瘪癡痴癢痒癤疖癥症癩癞"
    "癬癣癭瘿癮瘾癰痈癱瘫癲癫發发皁皂皚皑皰疱皸皲皺皱盃杯盜盗盞盏盡尽監监盤盘盧卢盪荡眥眦眾众睏困睜睁睞睐瞞瞒瞼睑"
    "矇蒙矚瞩矯矫硃朱硤硖硨砗硯砚碩硕碭砀確确碼码磚砖磣碜磧碛磯矶磽硗礎础礙碍礦矿礪砺礫砾礬矾礱砻祕秘祿禄禍祸禎祯"
    "禦御禪禅禮礼禰祢禱祷禿秃秈籼稅税稈秆稜棱稟禀種种稱称穀谷穌稣積积穎颖穡穑穢秽穩稳穫获窩窝窪洼窮穷窯窑窶窭窺窥"
    "竄窜竅窍竇窦竊窃競竞筆笔筍笋筧笕箇个箋笺箏筝節节範范築筑篋箧篤笃篩筛篳筚簀箦簍篓簑蓑簞箪簡简簣篑簫箫簽签簾帘"
    "籃篮籌筹籐藤籜箨籟籁籠笼籤签籩笾籪簖籬篱籮箩籲吁粵粤糝糁糞粪糧粮糰团糲粝糴籴糶粜糾纠紀纪紂纣約约紅红紆纡紇纥"
    "紈纨紉纫紋纹納纳紐纽紓纾純纯紕纰紗纱紙纸級级紛纷紜纭紡纺紮扎細细紱绂紲绁紳绅紹绍紺绀紼绋紿绐絀绌終终絃弦組组"
    "絆绊絎绗結结絕绝絛绦絞绞絡络絢绚給给絨绒統统絲丝絳绛絹绢綁绑綃绡綆绠綈绨綏绥綑捆經经綜综綞缍綠绿綢绸綣绻綬绶"
    "維维綰绾綱纲網网綴缀綵彩綸纶綹绺綺绮綻绽綽绰綾绫綿绵緄绲緇缁緊紧緋绯緒绪緗缃緘缄緙缂線线緝缉緞缎締缔緡缗緣缘"
    "緦缌編编緩缓緬缅緯纬緱缑緲缈練练緶缏緹缇緻致縈萦縉缙縊缢縋缒縐绉縑缣縛缚縝缜縞缟縟缛縣县縫缝縭缡縮缩縱纵縲缧"
    "縴纤縵缦縶絷縷缕縹缥總总績绩繃绷繅缫繆缪繒缯織织繕缮繚缭繞绕繡绣繢缋繩绳繪绘繫系繭茧繯缳繰缲繳缴繹绎繼继繽缤"
    "繾缱纈缬纊纩續续纍累纏缠纓缨纔才纖纤纘缵纜缆缽钵罈坛罌罂罰罚罵骂罷罢羅罗羆罴羈羁羋芈羥羟羨羡義义羶膻習习翫玩"
    "翹翘耡锄耬耧聖圣聞闻聯联聰聪聲声聳耸聵聩聶聂職职聹聍聽听聾聋肅肃脅胁脈脉脛胫脣唇脩修脫脱脹胀腎肾腡脶腦脑腫肿"
    "腳脚腸肠膃腽膚肤膠胶膩腻膽胆膾脍膿脓臉脸臍脐臏膑臘腊臚胪臟脏臠脔臥卧臨临臺台與与興兴舉举舊旧舖铺艙舱艤舣艦舰"
    "艫舻艱艰艷艳芻刍苧苎茲兹荊荆荳豆莊庄莖茎莢荚莧苋華华菴庵菸烟萇苌萊莱萬万萵莴葉叶葒荭著着葦苇葯药葷荤蒐搜蒔莳"
    "蒞莅蒼苍蓀荪蓆席蓋盖蓮莲蓯苁蓴莼蓽荜蔔卜蔘参蔞蒌蔣蒋蔥葱蔦茑蔭荫蕁荨蕆蒇蕎荞蕓芸蕕莸蕘荛蕢蒉蕩荡蕪芜蕭萧蕷蓣"
    "薈荟薊蓟薌芗薑姜薔蔷薟莶薦荐薩萨薰熏薹苔薺荠藍蓝藎荩藝艺藥药藪薮藶苈藹蔼藺蔺蘄蕲蘆芦蘇苏蘊蕴蘋苹蘗檗蘚藓蘞蔹"
    "蘢茏蘭兰蘺蓠蘿萝處处虛虚虜虏號号虧亏虯虬蛺蛱蛻蜕蜆蚬蝕蚀蝟猬蝦虾蝨虱蝸蜗螄蛳螞蚂螢萤螻蝼蟄蛰蟈蝈蟣虮蟬蝉蟯蛲"
    "蟲虫蟶蛏蟻蚁蠅蝇蠆虿蠍蝎蠐蛴蠑蝾蠔蚝蠟蜡蠣蛎蠱蛊蠶蚕蠻蛮衊蔑術术衕同衚胡衛卫衝冲袞衮袷夹裊袅補补裝装裡里製制"
    "複复褲裤褳裢褸褛褻亵襉裥襖袄襝裣襠裆襤褴襪袜襬摆襯衬襲袭覈核見见規规覓觅視视覘觇覡觋覦觎親亲覬觊覯觏覲觐覷觑"
    "覺觉覽览覿觌觀观觔斤觴觞觶觯觸触訂订訃讣計计訊讯訌讧討讨訐讦訓训訕讪訖讫託托記记訛讹訝讶訟讼訣诀訥讷訪访設设"
    "許许訴诉訶诃診诊註注証证詁诂詆诋詎讵詐诈詒诒詔诏評评詘诎詛诅詞词詠咏詡诩詢询詣诣試试詩诗詫诧詬诟詭诡詮诠詰诘"
    "話话該该詳详詵诜詼诙詿诖誄诔誅诛誆诓誇夸誌志認认誑诳誒诶誕诞誘诱誚诮語语誠诚誡诫誣诬誤误誥诰誦诵誨诲說说誰谁"
    "課课誶谇誹诽誼谊調调諂谄諄谆談谈諉诿請请諍诤諏诹諑诼諒谅論论諗谂諛谀諜谍諞谝諡谥諢诨諤谔諦谛諧谐諫谏諭谕諮咨"
    "諱讳諳谙諶谌諷讽諸诸諺谚諼谖諾诺謀谋謁谒謂谓謄誊謅诌謊谎謎谜謐谧謔谑謖谡謗谤謙谦謚谥講讲謝谢謠谣謨谟謫谪謬谬"
    "謳讴謹谨謾谩譁哗證证譎谲譏讥譖谮識识譙谯譚谭譜谱譟噪譫谵譭毁譯译議议譴谴護护譽誉譾谫讀读變变讎雠讒谗讓让讕谰"
    "讖谶讚赞讜谠讞谳谿溪豈岂豎竖豐丰豔艳豬猪貍狸貓猫貝贝貞贞負负財财貢贡貧贫貨货販贩貪贪貫贯責责貯贮貰贳貲赀貳贰"
    "貴贵貶贬買买貸贷貺贶費费貼贴貽贻貿贸賀贺賁贲賂赂賃赁賄贿賅赅資资賈贾賊贼賑赈賒赊賓宾賕赇賚赉賜赐賞赏賠赔賡赓"
    "賢贤賣卖賤贱賦赋賧赕質质賬账賭赌賴赖賺赚賻赙購购賽赛賾赜贄贽贅赘贈赠贊赞贍赡贏赢贐赆贓赃贖赎贗赝贛赣趕赶趙赵"
    "趨趋趲趱跡迹踐践踰逾踴踊蹌跄蹕跸蹟迹蹠跖蹣蹒蹤踪蹺跷躉趸躊踌躋跻躍跃躑踯躒跞躓踬躕蹰躚跹躡蹑躥蹿躦躜躪躏軀躯"
    "車车軋轧軌轨軍军軒轩軔轫軛轭軟软軫轸軸轴軹轵軺轺軻轲軼轶軾轼較较輅辂輇辁載载輊轾輒辄輓挽輔辅輕轻輛辆輜辎輝辉"
    "輞辋輟辍輥辊輦辇輩辈輪轮輯辑輳辏輸输輻辐輾辗輿舆轂毂轄辖轅辕轆辘轉转轍辙轎轿轔辚轟轰轡辔轢轹轤轳辦办辭辞辮辫"
    "辯辩農农迴回逕径這这連连週周進进遊游運运過过達达違违遙遥遜逊遞递遠远適适遲迟遶绕遷迁選选遺遗遼辽邁迈還还邇迩"
    "邊边邏逻邐逦郟郏郵邮鄆郓鄉乡鄒邹鄔邬鄖郧鄧邓鄭郑鄰邻鄲郸鄴邺鄶郐鄺邝酈郦醃腌醜丑醞酝醣糖醫医醬酱釀酿釁衅釃酾"
    "釅酽釋释釐厘釓钆釔钇釕钌釗钊釘钉釙钋針针釣钓釤钐釦扣釧钏釩钒釵钗釷钍釹钕鈀钯鈁钫鈄钭鈅钥鈉钠鈍钝鈐钤鈑钣鈔钞"
    "鈕钮鈞钧鈣钙鈥钬鈦钛鈧钪鈮铌鈰铈鈳钶鈴铃鈷钴鈸钹鈹铍鈺钰鈽钸鈾铀鈿钿鉀钾鉅巨鉆钻鉈铊鉉铉鉍铋鉑铂鉗钳鉚铆鉛铅"
    "鉞钺鉤钩鉦钲鉬钼鉭钽鉸铰鉺铒鉻铬鉿铪銀银銃铳銅铜銑铣銓铨銖铢銘铭銚铫銜衔銠铑銣铷銥铱銦铟銨铵銩铥銪铕銫铯銬铐"
    "銳锐銷销銻锑銼锉鋁铝鋃锒鋅锌鋇钡鋌铤鋏铗鋒锋鋝锊鋟锓鋤锄鋦锔鋨锇鋪铺鋮铖鋯锆鋰锂鋱铽鋸锯鋼钢錁锞錄录錆锖錈锩"
    "錐锥錒锕錕锟錘锤錙锱錚铮錛锛錟锬錠锭錢钱錦锦錨锚錫锡錮锢錯错錳锰錶表錸铼錼镎鍆钔鍇锴鍊炼鍋锅鍍镀鍔锷鍘铡鍛锻"
    "鍤锸鍥锲鍬锹鍰锾鍵键鍶锶鍺锗鍼针鍾钟鎂镁鎊镑鎌镰鎖锁鎗枪鎘镉鎚锤鎢钨鎣蓥鎦镏鎧铠鎩铩鎪锼鎬镐鎮镇鎰镒鎳镍鎵镓"
    "鏃镞鏇旋鏈链鏌镆鏍镙鏑镝鏗铿鏘锵鏜镗鏝镘鏞镛鏟铲鏡镜鏢镖鏤镂鏨錾鏵铧鏷镤鏹镪鏽锈鐃铙鐋铴鐐镣鐒铹鐓镦鐔镡鐘钟"
    "鐙镫鐠镨鐨镄鐫镌鐮镰鐲镯鐳镭鐵铁鐸铎鐺铛鐿镱鑄铸鑊镬鑌镔鑑鉴鑒鉴鑠铄鑣镳鑭镧鑰钥鑲镶鑷镊鑼锣鑽钻鑾銮鑿凿钁镢"
    "長长門门閂闩閃闪閆闫閉闭開开閌闶閎闳閏闰閑闲閒闲間间閔闵閘闸閡阂閣阁閤合閥阀閨闺閩闽閫阃閬阆閭闾閱阅閶阊閹阉"
    "閻阎閼阏閽阍閾阈閿阌闃阒闆板闇暗闈闱闊阔闋阕闌阑闐阗闔阖闕阙闖闯關关闞阚闡阐闢辟闥闼陘陉陝陕陞升陣阵陰阴陳陈"
    "陸陆陽阳隄堤隉陧隊队階阶隕陨際际隨随險险隱隐隴陇隸隶隻只雋隽雖虽雙双雛雏雜杂雞鸡離离難难雲云電电霑沾霧雾霽霁"
    "靂雳靄霭靈灵靚靓靜静靦腼靨靥鞏巩鞝绱鞦秋韁缰韃鞑韆千韉鞯韋韦韌韧韓韩韙韪韜韬韝鞲韞韫韻韵響响頁页頂顶頃顷項项"
    "順顺頇顸須须頊顼頌颂頎颀頏颃預预頑顽頒颁頓顿頗颇領领頜颌頡颉頤颐頦颏頭头頰颊頷颔頸颈頹颓頻频顆颗題题額额顎颚"
    "顏颜顓颛願愿顙颡顛颠類类顢颟顥颢顧顾顫颤顯显顰颦顱颅顳颞顴颧風风颮飑颯飒颱台颳刮颶飓颼飕飄飘飆飙飛飞飢饥飩饨"
    "飪饪飫饫飭饬飯饭飲饮飴饴飼饲飽饱飾饰餃饺餅饼餈糍餉饷養养餌饵餑饽餒馁餓饿餘余餚肴餛馄餞饯餡馅館馆餬糊餱糇餳饧"
    "餵喂餼饩餾馏餿馊饃馍饅馒饈馐饉馑饋馈饌馔饑饥饒饶饗飨饜餍饞馋馬马馭驭馮冯馱驮馳驰馴驯駁驳駐驻駑驽駒驹駔驵駕驾"
    "駘骀駙驸駛驶駝驼駟驷駢骈駭骇駱骆駿骏騁骋騅骓騍骒騎骑騏骐騖骛騙骗騫骞騭骘騮骝騰腾騶驺騷骚騸骟騾骡驀蓦驁骜驂骖"
    "驃骠驄骢驅驱驊骅驍骁驏骣驕骄驗验驚惊驛驿驟骤驢驴驤骧驥骥驪骊骯肮髏髅髒脏體体髕髌髖髋髮发鬆松鬍胡鬚须鬢鬓鬥斗"
    "鬧闹鬨哄鬩阋鬮阄鬱郁魎魉魘魇魚鱼魯鲁魴鲂魷鱿鮐鲐鮑鲍鮒鲋鮚鲒鮞鲕鮪鲔鮫鲛鮭鲑鮮鲜鯀鲧鯁鲠鯇鲩鯉鲤鯊鲨鯔鲻鯖鲭"
    "鯗鲞鯛鲷鯡鲱鯢鲵鯤鲲鯧鲳鯨鲸鯪鲮鯫鲰鯰鲶鯽鲫鰈鲽鰉鳇鰍鳅鰒鳆鰓鳃鰣鲥鰥鳏鰨鳎鰩鳐鰭鳍鰱鲢鰲鳌鰳鳓鰷鲦鰹鲣鰻鳗"
    "鰾鳔鱈鳕鱉鳖鱒鳟鱔鳝鱖鳜鱗鳞鱘鲟鱟鲎鱧鳢鱭鲚鱷鳄鱸鲈鱺鲡鳥鸟鳧凫鳩鸠鳳凤鳴鸣鳶鸢鴆鸩鴇鸨鴉鸦鴕鸵鴛鸳鴝鸲鴟鸱"
    "鴣鸪鴦鸯鴨鸭鴯鸸鴰鸹鴻鸿鴿鸽鵂鸺鵑鹃鵒鹆鵓鹁鵜鹈鵝鹅鵠鹄鵡鹉鵪鹌鵬鹏鵯鹎鵰雕鵲鹊鶇鸫鶉鹑鶘鹕鶚鹗鶩鹜鶯莺鶴鹤"
    "鶻鹘鶼鹣鶿鹚鷂鹞鷓鹧鷗鸥鷙鸷鷚鹨鷥鸶鷦鹪鷯鹩鷲鹫鷳鹇鷴鹇鷸鹬鷹鹰鷺鹭鸕鸬鸚鹦鸛鹳鸝鹂鸞鸾鹵卤鹹咸鹺鹾鹼碱鹽盐"
    "麗丽麥麦麩麸麴曲麵面麼么黃黄黌黉點点黨党黲黪黴霉黷黩黽黾黿鼋鼉鼍鼕冬鼴鼹齊齐齋斋齎赍齏齑齒齿齔龀齙龅齜龇齟龃"
    "齠龆齡龄齣出齦龈齧啮齪龊齬龉齲龋齶腭齷龌龍龙龐庞龔龚龕龛龜龟"
)

_T2S = {
    ord(traditional): simplified
    for traditional, simplified in zip(_TRADITIONAL_TO_SIMPLIFIED[::2], _TRADITIONAL_TO_SIMPLIFIED[1::2], strict=True)
}
