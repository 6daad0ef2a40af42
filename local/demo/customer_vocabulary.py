"""The words the demo customers are made of: cities, industries, company names, people's
names, titles, owners and tags, weighted the way a real book of business looks (Chinese
and English companies and people across China)."""

# city, city in English, region, region in English, telephone area code, postal prefix,
# streets, streets in English
City = tuple[str, str, str, str, str, str, tuple[str, ...], tuple[str, ...]]
CITIES: tuple[City, ...] = (
    ("上海", "Shanghai", "华东", "East China", "21", "200",
     ("浦东新区世纪大道", "静安区南京西路", "徐汇区漕溪北路", "闵行区虹梅路"),
     ("Century Avenue, Pudong", "West Nanjing Road, Jing'an")),
    ("杭州", "Hangzhou", "华东", "East China", "571", "310",
     ("西湖区文三路", "滨江区网商路", "余杭区文一西路"),
     ("Wensan Road, Xihu", "Binjiang Avenue")),
    ("南京", "Nanjing", "华东", "East China", "25", "210",
     ("鼓楼区中山路", "建邺区江东中路"),
     ("Zhongshan Road, Gulou", "Jiangdong Middle Road")),
    ("苏州", "Suzhou", "华东", "East China", "512", "215",
     ("工业园区星湖街", "姑苏区人民路"),
     ("Xinghu Street, SIP", "Renmin Road, Gusu")),
    ("北京", "Beijing", "华北", "North China", "10", "100",
     ("朝阳区建国路", "海淀区中关村大街", "东城区东长安街"),
     ("Jianguo Road, Chaoyang", "Zhongguancun Street, Haidian")),
    ("天津", "Tianjin", "华北", "North China", "22", "300",
     ("和平区南京路", "滨海新区第二大街"),
     ("Nanjing Road, Heping", "Second Avenue, TEDA")),
    ("深圳", "Shenzhen", "华南", "South China", "755", "518",
     ("南山区科技园南路", "福田区深南大道", "宝安区新安六路"),
     ("Shennan Boulevard, Futian", "Keyuan Road, Nanshan")),
    ("广州", "Guangzhou", "华南", "South China", "20", "510",
     ("天河区花城大道", "越秀区环市东路", "黄埔区科学大道"),
     ("Huacheng Avenue, Tianhe", "Huanshi East Road, Yuexiu")),
    ("成都", "Chengdu", "西南", "Southwest China", "28", "610",
     ("高新区天府大道", "锦江区红星路"),
     ("Tianfu Avenue, High-tech Zone", "Hongxing Road, Jinjiang")),
    ("重庆", "Chongqing", "西南", "Southwest China", "23", "400",
     ("渝中区民族路", "江北区北城天街"),
     ("Minzu Road, Yuzhong", "Beicheng Street, Jiangbei")),
    ("武汉", "Wuhan", "华中", "Central China", "27", "430",
     ("江汉区建设大道", "洪山区珞喻路"),
     ("Jianshe Avenue, Jianghan", "Luoyu Road, Hongshan")),
    ("西安", "Xi'an", "西北", "Northwest China", "29", "710",
     ("雁塔区高新路", "碑林区南大街"),
     ("Gaoxin Road, Yanta", "South Street, Beilin")),
)  # fmt: skip
CITY_WEIGHTS = (14, 7, 5, 5, 10, 3, 9, 8, 5, 3, 3, 2)

INDUSTRIES = (
    "retail", "manufacturing", "software", "logistics", "healthcare", "education", "finance",
)  # fmt: skip
INDUSTRY_WEIGHTS = (18, 20, 16, 14, 10, 8, 10)
# How a Chinese company name says its trade, and the word for its web domain.
INDUSTRY_WORDS: dict[str, tuple[tuple[str, str], ...]] = {
    "retail": (("贸易", "trade"), ("商贸", "trading"), ("百货", "retail")),
    "manufacturing": (
        ("精密机械", "machinery"),
        ("电子科技", "electronics"),
        ("新材料", "materials"),
    ),
    "software": (("软件", "soft"), ("信息技术", "it"), ("数据科技", "data")),
    "logistics": (("物流", "logistics"), ("供应链管理", "scm"), ("国际货运代理", "freight")),
    "healthcare": (("医疗器械", "medical"), ("健康科技", "health"), ("医药", "pharma")),
    "education": (("教育科技", "edu"), ("职业培训", "training")),
    "finance": (("投资管理", "capital"), ("融资租赁", "leasing"), ("保险经纪", "insurance")),
}
PARTNER_WORDS: dict[str, tuple[tuple[str, str], ...]] = {
    "retail": (("分销", "distribution"), ("电子商务", "ecommerce")),
    "software": (("系统集成", "si"), ("信息服务", "itservice")),
    "manufacturing": (("工业设备", "equipment"),),
}
BRANDS = (
    ("华信", "huaxin"), ("恒通", "hengtong"), ("瑞丰", "ruifeng"), ("博远", "boyuan"),
    ("金诚", "jincheng"), ("汇达", "huida"), ("鼎盛", "dingsheng"), ("安泰", "antai"),
    ("新源", "xinyuan"), ("宏图", "hongtu"), ("启明", "qiming"), ("云帆", "yunfan"),
    ("天成", "tiancheng"), ("嘉禾", "jiahe"), ("长风", "changfeng"), ("远景", "yuanjing"),
    ("众合", "zhonghe"), ("明辉", "minghui"), ("润泽", "runze"), ("正泰", "zhengtai"),
)  # fmt: skip
ENGLISH_COMPANIES = (
    ("Northwind Trading", "retail"),
    ("Harbor Logistics", "logistics"),
    ("Bluepeak Software", "software"),
    ("Evergreen Medical", "healthcare"),
    ("Summit Precision Manufacturing", "manufacturing"),
    ("Brightpath Education", "education"),
    ("Crescent Capital", "finance"),
    ("Orchid Retail Group", "retail"),
    ("Silverline Freight", "logistics"),
    ("Lumen Data Systems", "software"),
    ("Keystone Components", "manufacturing"),
    ("Redwood Health", "healthcare"),
)
INTERNAL_UNITS = (
    ("集团信息技术部", "software", "上海"),
    ("集团采购中心", "retail", "上海"),
    ("华南区域运营部", "logistics", "深圳"),
    ("Group Finance Shared Services", "finance", "Beijing"),
)
SURNAMES = (
    ("王", "wang"), ("李", "li"), ("张", "zhang"), ("刘", "liu"), ("陈", "chen"),
    ("杨", "yang"), ("黄", "huang"), ("赵", "zhao"), ("吴", "wu"), ("周", "zhou"),
    ("徐", "xu"), ("孙", "sun"), ("马", "ma"), ("朱", "zhu"), ("胡", "hu"),
    ("郭", "guo"), ("何", "he"), ("林", "lin"), ("高", "gao"), ("罗", "luo"),
)  # fmt: skip
GIVEN_NAMES = (
    ("伟", "wei"), ("芳", "fang"), ("娜", "na"), ("敏", "min"), ("静", "jing"),
    ("磊", "lei"), ("洋", "yang"), ("勇", "yong"), ("艳", "yan"), ("杰", "jie"),
    ("涛", "tao"), ("明", "ming"), ("超", "chao"), ("秀英", "xiuying"), ("建华", "jianhua"),
    ("志强", "zhiqiang"), ("晓东", "xiaodong"), ("海燕", "haiyan"), ("丽娟", "lijuan"),
    ("国栋", "guodong"), ("雪梅", "xuemei"), ("子涵", "zihan"), ("浩然", "haoran"),
    ("思远", "siyuan"),
)  # fmt: skip
ENGLISH_GIVEN = (
    "Emily", "David", "Michael", "Sarah", "James", "Linda",
    "Kevin", "Grace", "Daniel", "Sophie", "Ryan", "Olivia",
)  # fmt: skip
ENGLISH_SURNAMES = (
    "Chen", "Wang", "Zhang", "Li", "Liu", "Wong",
    "Tan", "Smith", "Miller", "Brown", "Johnson", "Lee",
)  # fmt: skip
TITLES = (
    "总经理",
    "采购经理",
    "财务总监",
    "IT 主管",
    "运营总监",
    "市场经理",
    "行政主管",
    "销售总监",
)
ENGLISH_TITLES = (
    "General Manager", "Procurement Manager", "CFO", "IT Manager",
    "Operations Director", "Marketing Manager", "Office Manager", "Head of Sales",
)  # fmt: skip
OWNERS_BY_REGION = {
    "华东": ("李娜", "陈静"),
    "华北": ("刘洋",),
    "华南": ("王磊",),
}
OTHER_OWNERS = ("Kevin Xu", "Lisa Zhou")
PERSONAL_MAIL = ("qq.com", "163.com", "126.com", "outlook.com", "gmail.com")
SOURCE_TAGS = {
    "trade show": "trade-show-2026",
    "wechat": "wechat-lead",
    "webinar": "webinar-2026",
    "referral": "referral",
}
